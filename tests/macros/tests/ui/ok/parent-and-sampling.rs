use ops_core::{ObservationContext, traced};

#[traced(parent = None)]
fn new_trace() {}

#[traced(parent = ctx, skip(ctx))]
fn by_value(ctx: ObservationContext) {}

#[traced(parent = ctx, skip(ctx))]
fn by_reference(ctx: &ObservationContext) {}

// A parameter named as the parent is not an input: no `skip` is needed.
#[traced(parent = ctx)]
fn parent_not_skipped(ctx: ObservationContext, query: &str) {}

#[traced(parent = &ctx)]
fn parent_by_reference_not_skipped(ctx: ObservationContext) {}

#[traced(parent = ctx.clone())]
fn parent_cloned_not_skipped(ctx: &ObservationContext) {}

#[traced(parent = maybe)]
fn optional_not_skipped(maybe: Option<ObservationContext>) {}

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
    parent_not_skipped(ObservationContext::current(), "q");
    parent_by_reference_not_skipped(ObservationContext::current());
    parent_cloned_not_skipped(&ObservationContext::current());
    optional_not_skipped(None);
    never_sampled();
    dynamic_rate(0.5);
}
