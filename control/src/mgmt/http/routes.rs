//! The HTTP API's routes: reads from the published view, changes handed to the control loop,
//! `explain`, the dashboard's event stream, and the web form's body.

use super::*;

pub(super) async fn handle(
    req: hyper::Request<Incoming>,
    shared: &Shared,
) -> hyper::Response<Body> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if host.is_empty() {
        return secured(refused(400, "a Host header is required".into()));
    }
    if !host_allowed(&host, &shared.hosts) {
        return secured(refused(
            421,
            format!(
                "Host '{host}' is not this appliance's: use its IP address or localhost, or list the name in daemon.http_hosts"
            ),
        ));
    }
    secured(route(req, shared).await)
}

pub(super) async fn route(req: hyper::Request<Incoming>, shared: &Shared) -> hyper::Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if method == Method::GET || method == Method::HEAD {
        if let Some((_, kind, body)) = ASSETS.iter().find(|(p, _, _)| *p == path) {
            let mut r = reply(StatusCode::OK, kind, *body);
            r.headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-cache"));
            return r;
        }
    }
    let segments: Vec<String> = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(String::from)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if method == Method::GET && path == "/metrics" {
        let view = shared.view.load();
        return reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            view.metrics.clone(),
        );
    }
    if segments.first() != Some(&"api") {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("no {path} here; the web UI is at /\n"),
        );
    }
    if let (&Method::GET, ["api", "v1", "laggs", name, "explain"]) = (&method, segments.as_slice())
    {
        return explain(name, &query, shared).await;
    }
    let dry_run = match parse_query(&query) {
        Ok(d) => d,
        Err(e) => return refused(400, e),
    };
    if method == Method::GET {
        return read(&segments, &path, shared);
    }
    change(req, method, &segments, &path, dry_run, shared).await
}

/// GET under /api/v1, from the published view.
pub(super) fn read(segments: &[&str], path: &str, shared: &Shared) -> hyper::Response<Body> {
    let view = shared.view.load();
    let data = match segments {
        ["api", "v1", "laggs"] => json!(view.laggs),
        ["api", "v1", "laggs", name] => match view.lagg(name) {
            Some(l) => json!([l]),
            None => {
                return refused(
                    404,
                    format!("{name} does not exist: create it with xlaggctl {name} create"),
                )
            }
        },
        ["api", "v1", "interfaces"] => view.interfaces.clone(),
        ["api", "v1", "config"] => view.config.clone(),
        ["api", "v1", "dump"] => view.dump.clone(),
        ["api", "v1", "stream"] => return stream(shared),
        _ => return refused(404, format!("no GET {path}: see /openapi.json for the API")),
    };
    json_reply(200, &Response::data(data))
}

/// `%XX` escapes and `+` of a query string's value or name decoded; `None` when an escape is
/// malformed or the result is not UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

/// GET /api/v1/laggs/{name}/explain?src_ip=..: the flow's fields from the query, answered
/// by the control loop (it holds the live table and lost marks), at most [`MAX_CHANGES`]
/// waiting at once with the changes.
pub(super) async fn explain(name: &str, query: &str, shared: &Shared) -> hyper::Response<Body> {
    let mut flow = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match (percent_decode(k), percent_decode(v)) {
            (Some(k), Some(v)) => flow.push((k, v)),
            _ => {
                return refused(
                    400,
                    format!("query parameter '{kv}': a malformed %-escape or not UTF-8"),
                )
            }
        }
    }
    let request = Request::Explain {
        name: name.to_string(),
        flow,
    };
    let response = match to_control_loop(shared, request).await {
        Ok(r) => r,
        Err(busy) => return busy,
    };
    let status = if response.ok {
        200
    } else if response
        .errors
        .iter()
        .any(|e| e.starts_with("no lagg named"))
    {
        404
    } else if response.errors.iter().any(|e| e.contains("is not running")) {
        409
    } else {
        422
    };
    json_reply(status, &response)
}

/// Server-sent events for the dashboard: a snapshot of every lagg each second, with the
/// events since the previous one, until the client goes away.
pub(super) fn stream(shared: &Shared) -> hyper::Response<Body> {
    let Ok(permit) = Arc::clone(&shared.streams).try_acquire_owned() else {
        return refused(
            503,
            format!("{MAX_STREAMS} dashboards are streaming already; close one or try later"),
        );
    };
    let view = Arc::clone(&shared.view);
    let events = futures::stream::unfold(
        (permit, view, 0u64, true),
        |(permit, view, since, first)| async move {
            if !first {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let snapshot = view.load().snapshot(since);
            let next = snapshot["next"].as_u64().unwrap_or(since);
            let line = Bytes::from(format!("data: {snapshot}\n\n"));
            Some((
                Ok::<_, Infallible>(Frame::data(line)),
                (permit, view, next, false),
            ))
        },
    );
    let mut r = hyper::Response::new(StreamBody::new(events).boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

/// The body of a change, whole or not at all.
pub(super) async fn body_of(
    req: hyper::Request<Incoming>,
) -> Result<String, hyper::Response<Body>> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        refused(
            413,
            format!("the body is larger than {MAX_BODY} bytes: nothing was read or changed"),
        )
    };
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let limited = Limited::new(req.into_body(), MAX_BODY);
    let collected = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => {
            return Err(refused(
                408,
                format!("the body did not arrive within {BODY_TIMEOUT:?}: nothing was changed"),
            ))
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Ok(Err(e)) => {
            return Err(refused(
                400,
                format!("reading the body failed ({e}): nothing was changed"),
            ))
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    String::from_utf8(collected.to_vec())
        .map_err(|_| refused(400, "the body is not UTF-8: nothing was changed".into()))
}

/// POST, PUT, DELETE under /api/v1: the token, the whole body, then the control loop.
pub(super) async fn change(
    req: hyper::Request<Incoming>,
    method: Method,
    segments: &[&str],
    path: &str,
    dry_run: bool,
    shared: &Shared,
) -> hyper::Response<Body> {
    if let Some(r) = unauthorized(&req, shared) {
        return r;
    }
    let body = match body_of(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let (&Method::POST, ["api", "v1", "auth"]) = (&method, segments) {
        return json_reply(200, &Response::data(json!({"token": "valid"})));
    }
    let Some(request) = change_request(&method, segments, body, dry_run) else {
        return refused(
            404,
            format!("no {method} {path}: see /openapi.json for the API"),
        );
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => return json_reply(422, &Response::refused(vec![e])),
    };
    let response = match to_control_loop(shared, request).await {
        Ok(r) => r,
        Err(busy) => return busy,
    };
    let status = if response.ok {
        200
    } else {
        refusal_status(&response)
    };
    json_reply(status, &response)
}

/// The 401 to answer when `req` does not carry the API token.
fn unauthorized(req: &hyper::Request<Incoming>, shared: &Shared) -> Option<hyper::Response<Body>> {
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let ok = given
        .strip_prefix("Bearer ")
        .is_some_and(|t| same(t.trim(), &shared.token));
    if !ok {
        let why = if given.is_empty() {
            "missing token: changes need Authorization: Bearer TOKEN (the token is in the daemon's token_file, root only)"
        } else {
            "wrong token: nothing was changed"
        };
        return Some(refused(401, why.into()));
    }
    None
}

/// The request a change route makes of `body`, or why the body does not do (none: no such
/// route).
fn change_request(
    method: &Method,
    segments: &[&str],
    body: String,
    dry_run: bool,
) -> Option<Result<Request, String>> {
    Some(match (method, segments) {
        (&Method::POST, ["api", "v1", "laggs"]) => {
            form(&body).map(|(spec, options)| Request::PutLagg {
                spec: Box::new(spec),
                create: true,
                options,
                dry_run,
            })
        }
        (&Method::PUT, ["api", "v1", "laggs", name]) => form(&body).and_then(|(spec, options)| {
            if spec.name == *name {
                Ok(Request::PutLagg {
                    spec: Box::new(spec),
                    create: false,
                    options,
                    dry_run,
                })
            } else {
                Err(format!(
                    "{name}.name: renaming is not supported: the body names {} (delete and create instead)",
                    spec.name
                ))
            }
        }),
        (&Method::DELETE, ["api", "v1", "laggs", name]) => Ok(Request::DeleteLagg {
            name: (*name).to_string(),
            dry_run,
        }),
        (&Method::POST, ["api", "v1", "laggs", name, "ifconfig"]) => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Words {
                args: Vec<String>,
            }
            serde_json::from_str::<Words>(&body)
                .map(|w| Request::Ifconfig {
                    name: (*name).to_string(),
                    args: w.args,
                    dry_run,
                })
                .map_err(|e| format!("the body must be {{\"args\": [\"laggport\", \"em0\"]}}: {e}"))
        }
        (&Method::PUT, ["api", "v1", "config"]) => Ok(Request::Replace {
            toml: body,
            dry_run,
        }),
        _ => return None,
    })
}

/// Hands `request` to the control loop and waits for its answer, with at most
/// [`MAX_CHANGES`] requests (changes and explanations) waiting at once: beyond, the 503 to
/// answer.
pub(super) async fn to_control_loop(
    shared: &Shared,
    request: Request,
) -> Result<Response, hyper::Response<Body>> {
    let Ok(_permit) = Arc::clone(&shared.changes).try_acquire_owned() else {
        return Err(refused(
            503,
            format!("{MAX_CHANGES} requests are waiting for the control loop already: try again when they are done"),
        ));
    };
    let dispatcher = shared.dispatcher.clone();
    Ok(
        tokio::task::spawn_blocking(move || dispatcher.dispatch(request))
            .await
            .unwrap_or_else(|_| {
                Response::refused(vec![
                    "the request could not be handed to the control loop".into()
                ])
            }),
    )
}

/// The HTTP status for a refusal: 404 when the lagg does not exist, 422 otherwise.
pub(super) fn refusal_status(r: &Response) -> u16 {
    if r.errors.iter().any(|e| e.contains("does not exist")) {
        404
    } else {
        422
    }
}

/// The web form's body: the `[[lagg]]` table as JSON, plus `options` (ifconfig words).
///
/// # Errors
/// The body is not JSON or not a lagg.
pub fn form(body: &str) -> Result<(LaggSpec, Vec<String>), String> {
    let mut value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let options = match value.as_object_mut().and_then(|o| o.remove("options")) {
        Some(serde_json::Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        Some(serde_json::Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let spec: LaggSpec =
        serde_json::from_value(value).map_err(|e| format!("the lagg is not understood: {e}"))?;
    Ok((spec, options))
}
