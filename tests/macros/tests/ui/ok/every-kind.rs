use ops_core::traced;

#[traced(kind = "workflow")] fn workflow() {}
#[traced(kind = "message")] fn message() {}
#[traced(kind = "moderation")] fn moderation() {}
#[traced(kind = "suggested_question")] fn suggested_question() {}
#[traced(kind = "dataset_retrieval")] fn dataset_retrieval() {}
#[traced(kind = "tool")] fn tool() {}
#[traced(kind = "generate_conversation_name")] fn generate_conversation_name() {}
#[traced(kind = "prompt_generation")] fn prompt_generation() {}
#[traced(kind = "node_execution")] fn node_execution() {}
#[traced(kind = "node")] fn node() {}
#[traced(kind = "draft_node_execution")] fn draft_node_execution() {}
#[traced(kind = "conversation")] fn conversation() {}
#[traced(kind = "agent")] fn agent() {}
#[traced(kind = "span")] fn span() {}
#[traced(kind = "generation")] fn generation() {}
#[traced(kind = "llm")] fn llm() {}

fn main() {
    workflow(); message(); moderation(); suggested_question(); dataset_retrieval(); tool();
    generate_conversation_name(); prompt_generation(); node_execution(); node();
    draft_node_execution(); conversation(); agent(); span(); generation(); llm();
}
