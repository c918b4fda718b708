//! Reading chat messages, answers and retrieved documents out of the JSON shapes Dify and
//! `ops` record, for the dialects that have structured attributes for them.

use serde_json::{Map, Value};

/// One chat message: a role and its text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    pub(crate) role: String,
    pub(crate) content: String,
}

fn message_of(value: &Value) -> Option<Message> {
    let m = value.as_object()?;
    let role = m.get("role").and_then(Value::as_str)?;
    let content = m
        .get("content")
        .or_else(|| m.get("text"))
        .map(content_text)
        .unwrap_or_default();
    Some(Message {
        role: role.to_owned(),
        content,
    })
}

/// The text of a message's content: a string, or the text parts of an OpenAI-style part list.
fn content_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o
                    .get("text")
                    .or_else(|| o.get("content"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(""),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The prompt messages in an LLM input: a list of `{role, text|content}` (Dify's
/// `process_data.prompts`, OpenAI's `messages`), such a list under `messages` or `prompts`,
/// or a plain string (one user message).
pub(crate) fn input_messages(input: &Value) -> Option<Vec<Message>> {
    match input {
        Value::String(s) => Some(vec![Message {
            role: "user".into(),
            content: s.clone(),
        }]),
        Value::Array(items) => {
            let messages: Option<Vec<Message>> = items.iter().map(message_of).collect();
            messages.filter(|m| !m.is_empty())
        }
        Value::Object(o) => ["messages", "prompts", "message"]
            .iter()
            .find_map(|k| o.get(*k))
            .filter(|v| v.is_array() || v.is_string())
            .and_then(input_messages),
        _ => None,
    }
}

/// The answer text of an LLM output: a string, or the `text`/`answer`/`content` of an object
/// (Dify's node outputs hold `text`), or the content of an assistant message.
pub(crate) fn output_text(output: &Value) -> Option<String> {
    match output {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => ["text", "answer", "content", "output"]
            .iter()
            .find_map(|k| o.get(*k))
            .map(content_text)
            .or_else(|| o.get("message").and_then(message_of).map(|m| m.content)),
        _ => None,
    }
}

/// One retrieved document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    pub(crate) id: Option<String>,
    pub(crate) content: String,
    pub(crate) score: Option<f64>,
    pub(crate) metadata: Option<Map<String, Value>>,
}

fn document_of(value: &Value) -> Option<Document> {
    match value {
        Value::String(s) => Some(Document {
            id: None,
            content: s.clone(),
            score: None,
            metadata: None,
        }),
        Value::Object(o) => {
            let content = ["page_content", "content", "text"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))?
                .to_owned();
            let metadata = o.get("metadata").and_then(Value::as_object);
            let find = |k: &str| o.get(k).or_else(|| metadata.and_then(|m| m.get(k)));
            let id = ["document_id", "doc_id", "id", "segment_id"]
                .iter()
                .find_map(|k| find(k))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
            let score = find("score").and_then(Value::as_f64);
            Some(Document {
                id,
                content,
                score,
                metadata: metadata.cloned(),
            })
        }
        _ => None,
    }
}

/// The documents in a retrieval output: a list, or a list under `documents` or `result`
/// (Dify's dataset retrieval and knowledge-retrieval node outputs).
pub(crate) fn documents(output: &Value) -> Option<Vec<Document>> {
    let list = match output {
        Value::Array(items) => items,
        Value::Object(o) => ["documents", "result", "results"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array))?,
        _ => return None,
    };
    let docs: Vec<Document> = list.iter().filter_map(document_of).collect();
    (!docs.is_empty()).then_some(docs)
}

/// The retrieval query in a retrieval input: a string, or `query` of an object.
pub(crate) fn query_text(input: &Value) -> Option<String> {
    match input {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("query").and_then(|q| match q {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_difys_prompts_and_openai_messages() {
        let dify = json!([{"role": "system", "text": "be brief"}, {"role": "user", "text": "hi", "files": []}]);
        let m = input_messages(&dify).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[1],
            Message {
                role: "user".into(),
                content: "hi".into()
            }
        );
        let openai = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]});
        assert_eq!(input_messages(&openai).unwrap()[0].content, "ab");
        assert_eq!(input_messages(&json!("q")).unwrap()[0].role, "user");
        assert!(input_messages(&json!({"x": 1})).is_none());
        assert!(input_messages(&json!([1, 2])).is_none());
    }

    #[test]
    fn reads_answers() {
        assert_eq!(output_text(&json!("4")).as_deref(), Some("4"));
        assert_eq!(
            output_text(&json!({"text": "t", "usage": {}})).as_deref(),
            Some("t")
        );
        assert_eq!(
            output_text(&json!({"message": {"role": "assistant", "content": "c"}})).as_deref(),
            Some("c")
        );
        assert!(output_text(&json!(3)).is_none());
    }

    #[test]
    fn reads_documents() {
        let dify = json!({"documents": [{"page_content": "doc", "metadata": {"score": 0.9, "document_id": "d1"}}]});
        let d = documents(&dify).unwrap();
        assert_eq!(d[0].content, "doc");
        assert_eq!(d[0].score, Some(0.9));
        assert_eq!(d[0].id.as_deref(), Some("d1"));
        let node = json!({"result": [{"content": "c", "title": "t", "metadata": {"score": 0.5}}]});
        assert_eq!(documents(&node).unwrap()[0].content, "c");
        assert!(documents(&json!({"result": []})).is_none());
        assert_eq!(query_text(&json!({"query": "q"})).as_deref(), Some("q"));
    }
}
