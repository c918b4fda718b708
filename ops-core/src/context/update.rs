//! Updates from inside a traced function, as Langfuse's `update_current_observation` and
//! `update_current_trace`.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use super::capture::Captured;
use crate::model::{Level, TraceAttributes, Usage};

/// Changes to the current observation. Build them in the closure given to
/// [`update_current_observation`](crate::update_current_observation); every setter returns `&mut Self` to chain.
///
/// A value set here beats what `#[traced]` captured or was given: an `output` set here
/// replaces the return value as the output.
#[derive(Debug, Default)]
pub struct ObservationUpdate {
    pub(crate) name: Option<String>,
    pub(crate) input: Option<Captured>,
    pub(crate) output: Option<Captured>,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) tags: Vec<String>,
    pub(crate) level: Option<Level>,
    pub(crate) status_message: Option<String>,
    pub(crate) usage: Option<Usage>,
    pub(crate) model: Option<String>,
    pub(crate) model_provider: Option<String>,
    pub(crate) model_parameters: Map<String, Value>,
    pub(crate) completion_start_time: Option<SystemTime>,
    pub(crate) attributes: TraceAttributes,
}

impl ObservationUpdate {
    /// Renames the observation.
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        self.name = Some(name.into());
        self
    }

    /// Replaces the captured input.
    pub fn input(&mut self, input: impl Serialize) -> &mut Self {
        self.input = Some(Captured::now(&input));
        self
    }

    /// Sets the output; it replaces the captured return value.
    pub fn output(&mut self, output: impl Serialize) -> &mut Self {
        self.output = Some(Captured::now(&output));
        self
    }

    /// Adds a metadata entry.
    pub fn metadata(&mut self, key: impl Into<String>, value: impl Serialize) -> &mut Self {
        self.metadata
            .insert(key.into(), Captured::now(&value).to_value());
        self
    }

    /// Adds a tag.
    pub fn tag(&mut self, tag: impl Into<String>) -> &mut Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets the level (ERROR marks a failure, WARNING a partial one).
    pub fn level(&mut self, level: Level) -> &mut Self {
        self.level = Some(level);
        self
    }

    /// Says why the observation has its level.
    pub fn status_message(&mut self, message: impl Into<String>) -> &mut Self {
        self.status_message = Some(message.into());
        self
    }

    /// Sets what the call consumed: tokens and their cost. For example
    /// `Usage::tokens(12, 30).with_cost(0.0004, "USD")`.
    pub fn usage(&mut self, usage: Usage) -> &mut Self {
        self.usage = Some(usage);
        self
    }

    /// Sets the model of a generation.
    pub fn model(&mut self, model: impl Into<String>) -> &mut Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the model's provider, such as `openai`.
    pub fn model_provider(&mut self, provider: impl Into<String>) -> &mut Self {
        self.model_provider = Some(provider.into());
        self
    }

    /// Adds a model parameter (temperature, max_tokens, ...).
    pub fn model_parameter(&mut self, key: impl Into<String>, value: impl Serialize) -> &mut Self {
        self.model_parameters
            .insert(key.into(), Captured::now(&value).to_value());
        self
    }

    /// Records that the first token arrived now (Langfuse's `completion_start_time`, for time
    /// to first token).
    pub fn completion_started(&mut self) -> &mut Self {
        self.completion_start_time = Some(SystemTime::now());
        self
    }

    /// Records when the first token arrived.
    pub fn completion_start_time(&mut self, at: SystemTime) -> &mut Self {
        self.completion_start_time = Some(at);
        self
    }

    /// Overrides the trace's user for this observation.
    pub fn user_id(&mut self, user_id: impl Into<String>) -> &mut Self {
        self.attributes.user_id = Some(user_id.into());
        self
    }

    /// Overrides the trace's session for this observation.
    pub fn session_id(&mut self, session_id: impl Into<String>) -> &mut Self {
        self.attributes.session_id = Some(session_id.into());
        self
    }

    /// Applies `later` on top of `self`: what `later` sets wins.
    pub(crate) fn merge(&mut self, later: ObservationUpdate) {
        let ObservationUpdate {
            name,
            input,
            output,
            metadata,
            mut tags,
            level,
            status_message,
            usage,
            model,
            model_provider,
            model_parameters,
            completion_start_time,
            attributes,
        } = later;
        macro_rules! take {
            ($($field:ident),*) => { $(if $field.is_some() { self.$field = $field; })* };
        }
        take!(
            name,
            input,
            output,
            level,
            status_message,
            usage,
            model,
            model_provider,
            completion_start_time
        );
        self.metadata.extend(metadata);
        self.model_parameters.extend(model_parameters);
        self.tags.append(&mut tags);
        self.attributes = attributes.or(&self.attributes);
    }

    /// The heap it holds, estimated.
    pub(crate) fn size(&self) -> usize {
        use crate::model::size::{alloc, map, string};
        let opt = |s: &Option<String>| s.as_ref().map_or(0, string);
        alloc(std::mem::size_of::<Self>())
            + opt(&self.name)
            + self.input.as_ref().map_or(0, Captured::size)
            + self.output.as_ref().map_or(0, Captured::size)
            + map(&self.metadata)
            + map(&self.model_parameters)
            + self.tags.iter().map(|t| string(t) + 24).sum::<usize>()
            + opt(&self.status_message)
            + opt(&self.model)
            + opt(&self.model_provider)
            + [
                &self.attributes.user_id,
                &self.attributes.session_id,
                &self.attributes.app_id,
                &self.attributes.tenant_id,
                &self.attributes.environment,
                &self.attributes.release,
                &self.attributes.version,
            ]
            .into_iter()
            .map(opt)
            .sum::<usize>()
    }
}

/// Changes to the current trace. Build them in the closure given to
/// [`update_current_trace`](crate::update_current_trace); every setter returns `&mut Self` to chain.
#[derive(Debug, Default, Clone)]
pub struct TraceUpdate {
    pub(crate) name: Option<String>,
    pub(crate) attributes: TraceAttributes,
    pub(crate) tags: Vec<String>,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) input: Option<Value>,
    pub(crate) output: Option<Value>,
}

impl TraceUpdate {
    /// Renames the trace (by default it has its root observation's name).
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the end user or account the trace is for.
    pub fn user_id(&mut self, user_id: impl Into<String>) -> &mut Self {
        self.attributes.user_id = Some(user_id.into());
        self
    }

    /// Sets the session (for example the conversation) the trace belongs to.
    pub fn session_id(&mut self, session_id: impl Into<String>) -> &mut Self {
        self.attributes.session_id = Some(session_id.into());
        self
    }

    /// Sets the app the trace belongs to; it routes the trace to the app's providers.
    pub fn app_id(&mut self, app_id: impl Into<String>) -> &mut Self {
        self.attributes.app_id = Some(app_id.into());
        self
    }

    /// Sets the tenant (workspace).
    pub fn tenant_id(&mut self, tenant_id: impl Into<String>) -> &mut Self {
        self.attributes.tenant_id = Some(tenant_id.into());
        self
    }

    /// Sets the deployment environment, for example `production`.
    pub fn environment(&mut self, environment: impl Into<String>) -> &mut Self {
        self.attributes.environment = Some(environment.into());
        self
    }

    /// Sets the release of the application.
    pub fn release(&mut self, release: impl Into<String>) -> &mut Self {
        self.attributes.release = Some(release.into());
        self
    }

    /// Sets the version of what is traced.
    pub fn version(&mut self, version: impl Into<String>) -> &mut Self {
        self.attributes.version = Some(version.into());
        self
    }

    /// Adds a tag.
    pub fn tag(&mut self, tag: impl Into<String>) -> &mut Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds tags.
    pub fn tags<S: Into<String>>(&mut self, tags: impl IntoIterator<Item = S>) -> &mut Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Adds a metadata entry to the trace.
    pub fn metadata(&mut self, key: impl Into<String>, value: impl Serialize) -> &mut Self {
        self.metadata
            .insert(key.into(), Captured::now(&value).to_value());
        self
    }

    /// Sets the trace's input (by default its root observation's).
    pub fn input(&mut self, input: impl Serialize) -> &mut Self {
        self.input = Some(Captured::now(&input).to_value());
        self
    }

    /// Sets the trace's output (by default its root observation's).
    pub fn output(&mut self, output: impl Serialize) -> &mut Self {
        self.output = Some(Captured::now(&output).to_value());
        self
    }

    /// The heap it holds, estimated.
    pub(crate) fn size(&self) -> usize {
        use crate::model::size::{map, string, value};
        let opt = |s: &Option<String>| s.as_ref().map_or(0, string);
        opt(&self.name)
            + self.tags.iter().map(|t| string(t) + 24).sum::<usize>()
            + map(&self.metadata)
            + self.input.as_ref().map_or(0, value)
            + self.output.as_ref().map_or(0, value)
            + [
                &self.attributes.user_id,
                &self.attributes.session_id,
                &self.attributes.app_id,
                &self.attributes.tenant_id,
                &self.attributes.environment,
                &self.attributes.release,
                &self.attributes.version,
            ]
            .into_iter()
            .map(opt)
            .sum::<usize>()
    }

    pub(crate) fn merge(&mut self, later: TraceUpdate) {
        if later.name.is_some() {
            self.name = later.name;
        }
        self.attributes = later.attributes.or(&self.attributes);
        crate::model::merge_tags(&mut self.tags, later.tags);
        self.metadata.extend(later.metadata);
        if later.input.is_some() {
            self.input = later.input;
        }
        if later.output.is_some() {
            self.output = later.output;
        }
    }
}
