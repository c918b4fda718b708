"""W&B Weave's own trace server code behind HTTP, on loopback, for end-to-end tests.

weave (PyPI) ships its trace server's SQLite implementation (`SqliteTraceServer`: calls,
objects, files, per-project token prices and the costs computed from them) and the adapter
its hosted server puts in front of its store (`ExternalTraceServer`: `entity/project` ids
and `weave:///` refs to internal ones and back), but not the HTTP app. This file is that
missing layer, and only that: each route parses its body with weave's own request model
(`trace_server_interface`, which forbids unknown fields where weave's server does), calls the
same method the hosted server does, and answers with weave's response model, or with the
status and body weave's error registry gives the exception (422 for a body the model
rejects, as FastAPI answers). Authentication is not checked: every request acts as user
`ops-e2e`, as the hosted server fills `wb_user_id` from the API key.

Routes (the hosted server's paths): POST /call/upsert_batch, /call/start, /call/end,
/calls/stream_query (JSON lines), /call/read, /obj/create, /obj/read, /objs/query,
/file/create and /files/create (multipart `project_id`, `file`), /files/content,
/cost/create, /cost/query, /v2/{entity}/{project}/calls/complete; GET /server_info.

Usage: server.py --port PORT --db PATH
"""

import argparse
import base64
import json
import os
import sys
import traceback
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Datadog instrumentation the trace server is decorated with: off, nothing to send it to.
os.environ.setdefault("DD_TRACE_ENABLED", "false")
os.environ.setdefault("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")

import pydantic  # noqa: E402
from weave.trace_server import errors  # noqa: E402
from weave.trace_server import trace_server_interface as tsi  # noqa: E402
from weave.trace_server.external_to_internal_trace_server_adapter import (  # noqa: E402
    ExternalTraceServer,
    IdConverter,
)
from weave.trace_server.sqlite_trace_server import SqliteTraceServer  # noqa: E402

USER = "ops-e2e"


def _b64(s: str) -> str:
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def _unb64(s: str) -> str:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()


class Ids(IdConverter):
    """External ids (`entity/project`, run and user ids) to opaque internal ones and back,
    as the hosted server maps them to its numeric ids: internal ids are never the
    external text."""

    def ext_to_int_project_id(self, project_id: str) -> str:
        return "p" + _b64(project_id)

    def int_to_ext_project_id(self, project_id: str) -> str | None:
        return _unb64(project_id[1:]) if project_id.startswith("p") else None

    def ext_to_int_run_id(self, run_id: str) -> str:
        return "r" + _b64(run_id)

    def int_to_ext_run_id(self, run_id: str) -> str:
        return _unb64(run_id[1:])

    def ext_to_int_user_id(self, user_id: str) -> str:
        return "u" + _b64(user_id)

    def int_to_ext_user_id(self, user_id: str) -> str:
        return _unb64(user_id[1:]) if user_id.startswith("u") else user_id


def upsert_batch(ts, req: tsi.CallCreateBatchReq) -> tsi.CallCreateBatchRes:
    # As the hosted server's route: each item through the adapter, in order.
    res = []
    for item in req.batch:
        if isinstance(item, tsi.CallBatchStartMode):
            item.req.start.wb_user_id = USER
            res.append(ts.call_start(item.req))
        else:
            res.append(ts.call_end(item.req))
    return tsi.CallCreateBatchRes(res=res)


def call_start(ts, req: tsi.CallStartReq):
    req.start.wb_user_id = USER
    return ts.call_start(req)


def obj_create(ts, req: tsi.ObjCreateReq):
    req.obj.wb_user_id = USER
    return ts.obj_create(req)


def cost_create(ts, req: tsi.CostCreateReq):
    req.wb_user_id = USER
    return ts.cost_create(req)


def calls_complete(ts, req):
    for call in req.batch:
        if hasattr(call, "wb_user_id"):
            call.wb_user_id = USER
    return ts.calls_complete(req)


JSON_ROUTES = {
    "/call/upsert_batch": (tsi.CallCreateBatchReq, upsert_batch),
    "/call/start": (tsi.CallStartReq, call_start),
    "/call/end": (tsi.CallEndReq, lambda ts, r: ts.call_end(r)),
    "/call/read": (tsi.CallReadReq, lambda ts, r: ts.call_read(r)),
    "/obj/create": (tsi.ObjCreateReq, obj_create),
    "/obj/read": (tsi.ObjReadReq, lambda ts, r: ts.obj_read(r)),
    "/objs/query": (tsi.ObjQueryReq, lambda ts, r: ts.objs_query(r)),
    "/files/content": (tsi.FileContentReadReq, None),
    "/cost/create": (tsi.CostCreateReq, cost_create),
    "/cost/query": (tsi.CostQueryReq, lambda ts, r: ts.cost_query(r)),
}


class Handler(BaseHTTPRequestHandler):
    server_version = "ops-e2e-weave"
    ts: ExternalTraceServer

    def log_message(self, fmt, *args):  # one line per request, to the log
        sys.stderr.write("%s %s\n" % (self.command, fmt % args))

    def answer(self, status: int, body, content_type: str = "application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, exc: Exception):
        if isinstance(exc, pydantic.ValidationError):
            detail = json.loads(exc.json(include_url=False, include_input=False))
            return self.answer(422, {"detail": detail})
        handled = errors.handle_server_exception(exc)
        if handled.status_code >= 500:
            traceback.print_exc()
        self.answer(handled.status_code, handled.message)

    def do_GET(self):
        if self.path.rstrip("/") == "/server_info":
            return self.answer(
                200,
                {"min_required_weave_python_version": "0.0.0", "trace_server_version": None},
            )
        self.answer(404, {"reason": f"no route {self.path}"})

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):
        path = self.path.split("?")[0]
        try:
            raw = self.body()
            if path in ("/file/create", "/files/create"):
                return self.file_create(raw)
            if path == "/calls/stream_query":
                req = tsi.CallsQueryReq.model_validate_json(raw)
                lines = b"".join(
                    c.model_dump_json().encode() + b"\n" for c in self.ts.calls_query_stream(req)
                )
                return self.answer(200, lines, "application/jsonl")
            if path == "/files/content":
                req = tsi.FileContentReadReq.model_validate_json(raw)
                return self.answer(200, self.ts.file_content_read(req).content, "application/octet-stream")
            parts = path.strip("/").split("/")
            if len(parts) == 5 and parts[0] == "v2" and parts[3:] == ["calls", "complete"]:
                req = tsi.CallsUpsertCompleteReq.model_validate_json(raw)
                return self.answer(200, json.loads(calls_complete(self.ts, req).model_dump_json()))
            route = JSON_ROUTES.get(path)
            if route is None or route[1] is None:
                return self.answer(404, {"reason": f"no route {path}"})
            model, method = route
            res = method(self.ts, model.model_validate_json(raw))
            self.answer(200, json.loads(res.model_dump_json()))
        except Exception as exc:  # noqa: BLE001 - every failure is answered, as the server does
            self.fail(exc)

    def file_create(self, raw: bytes):
        ctype = self.headers.get("Content-Type", "")
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
        )
        if not msg.is_multipart():
            return self.answer(422, {"detail": "multipart/form-data expected"})
        fields, name, content = {}, None, None
        for part in msg.iter_parts():
            field = part.get_param("name", header="content-disposition")
            if field == "file":
                name = part.get_filename()
                content = part.get_payload(decode=True)
            elif field:
                fields[field] = part.get_content().strip()
        req = tsi.FileCreateReq(
            project_id=fields.get("project_id", ""), name=name or "", content=content or b""
        )
        self.answer(200, json.loads(self.ts.file_create(req).model_dump_json()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    args = ap.parse_args()
    internal = SqliteTraceServer(args.db)
    internal.setup_tables()
    Handler.ts = ExternalTraceServer(internal, Ids())
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"weave trace server on 127.0.0.1:{args.port}, db {args.db}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
