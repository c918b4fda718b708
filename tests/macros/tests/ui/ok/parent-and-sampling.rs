use ops_core::{ObservationContext, traced};

#[traced(parent = None)]
fn new_trace() {}

#[traced(parent = ctx, skip(ctx))]
fn by_value(ctx: ObservationContext) {}

#[traced(parent = ctx, skip(ctx))]
fn by_reference(ctx: &ObservationContext) {}

#[traced(parent = maybe, skip_all)]
fn optional(maybe: Option<ObservationContext>) {}

#[traced(sample_rate = 0)]
fn never_sampled() {}

#[traced(sample_rate = rate)]
fn dynamic_rate(rate: f64) {}

fn main() {
    new_trace();
    let ctx = ObservationContext::current();
    by_reference(&ctx);
    by_value(ctx);
    optional(None);
    never_sampled();
    dynamic_rate(0.5);
}
