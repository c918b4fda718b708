use ops_core::traced;

#[derive(serde::Serialize)]
struct Settings {
    depth: u8,
}

struct Request {
    user: String,
    session: Option<String>,
    settings: Settings,
}

// Expressions may use the parameters; they are taken by reference before the body moves them.
#[traced(
    kind = "generation",
    skip(req),
    user_id = req.user,
    session_id = req.session,
    metadata(settings = req.settings, length = req.user.len()),
    model = req.user,
    model_parameters(depth = req.settings.depth),
)]
fn handle(req: Request) -> String {
    req.user
}

#[traced(tags("a"), level = "warning", user_id = String::from("u"), session_id = 7i64)]
fn tagged() {}

fn main() {
    let req = Request {
        user: "u".into(),
        session: None,
        settings: Settings { depth: 2 },
    };
    assert_eq!(handle(req), "u");
    tagged();
}
