#![doc = include_str!("../README.md")]
//!
//! # What a generation holds
//!
//! | field | from |
//! |---|---|
//! | name | `openai.chat`, `openai.completions`, `openai.embeddings` or `openai.responses` |
//! | model | the model that answered (the request's until the answer arrives) |
//! | model provider | `openai` |
//! | model parameters | every request field that is set and is not the model, the input or bookkeeping (`user`, `metadata`, `store`, ...): `temperature`, `max_tokens`, `tool_choice`, `response_format`, `stream_options`, ... |
//! | input | chat: the messages (with `tools`, an object of both); completions: the prompt; embeddings: the input; responses: the input (with `instructions` and `tools`, an object of them) |
//! | output | chat: the message (role, content, tool calls), an array for `n > 1`; completions: the text; embeddings: the count and dimensions of the vectors; responses: the output items |
//! | usage | prompt, completion and total tokens; `cached_tokens` and `reasoning_tokens` in its details; input, output and total cost from a [`PriceTable`] |
//! | level, status | ERROR and the error's message; the API's error object in the metadata as `openai_error`, its HTTP status as `http_status` |
//! | `completion_start_time` | streams: when the first chunk arrived (responses: the first text, refusal or function-arguments delta) |
//! | metadata `chunks` | streams: how many chunks (events) passed |
//!
//! # Streams
//!
//! `create_stream` (chat, completions, responses) returns async-openai's own stream type.
//! The generation stays open until the stream ends or is dropped; the chunks are reduced to
//! the output a non-streamed call records (chat: the message per choice, with tool calls
//! joined from their deltas; completions: the text; responses: the final event's output
//! items). Chat and completions report usage only when the request sets
//! `stream_options.include_usage`; responses always do, in their final event. An error
//! chunk sets level ERROR with the API's message; a dropped stream is recorded as
//! cancelled (level WARNING), with what had arrived.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod chat;
mod client;
mod completions;
mod embeddings;
mod price;
mod record;
mod responses;
mod stream;
mod usage;

pub use chat::Chat;
pub use client::TracedClient;
pub use completions::Completions;
pub use embeddings::Embeddings;
pub use price::{Price, PriceError, PriceTable};
pub use responses::Responses;
