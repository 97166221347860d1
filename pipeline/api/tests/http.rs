//! The server skeleton: OpenAPI document and UI, the JSON error shape for every kind of failure
//! (404, 405, 413, 422, 429, 503), health and metrics, production token keys, shutdown.

mod support;

use std::time::Duration;

use support::*;
use ttlc_api::Role;

async fn error_of(response: reqwest::Response) -> (u16, Option<String>, serde_json::Value) {
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert!(body["error"].is_string() && body["message"].is_string(), "error shape: {body}");
    (status, retry_after, body)
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_the_ui_is_served() {
    let api = &*SHARED;
    let client = reqwest::Client::new();
    let doc: serde_json::Value = client
        .get(api.url("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("valid JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    let want = [
        ("/health", "get"),
        ("/metrics", "get"),
        ("/streams", "get"),
        ("/streams/{id}", "get"),
        ("/streams/{id}/sessions", "get"),
        ("/sessions/{id}/events", "get"),
        ("/sessions/{id}/replay", "post"),
        ("/users/{id}", "get"),
        ("/users/{id}/events", "get"),
        ("/users/{id}/notes", "get"),
        ("/users/{id}/notes", "post"),
        ("/streams/{id}/events", "get"),
        ("/streams/{id}/ws", "get"),
        ("/streams/{id}/overlay", "get"),
        ("/taps/{topic}", "get"),
        ("/channels", "get"),
        ("/channels", "post"),
        ("/channels/{id}", "delete"),
        ("/analytics/streams/{id}/summary", "get"),
        ("/analytics/streams/{id}/events-per-minute", "get"),
        ("/analytics/streams/{id}/top-gifters", "get"),
        ("/analytics/streams/{id}/top-chatters", "get"),
        ("/analytics/streams/{id}/coins", "get"),
        ("/analytics/global/summary", "get"),
        ("/analytics/global/events-per-minute", "get"),
        ("/analytics/global/top-gifters", "get"),
        ("/analytics/global/top-chatters", "get"),
        ("/analytics/global/coins", "get"),
    ];
    for (path, method) in want {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is missing from the document"
        );
    }
    // Error responses are documented with the shared schema.
    let streams = &paths["/streams/{id}"]["get"]["responses"];
    assert!(streams["404"].is_object() && streams["401"].is_object(), "{streams}");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let ui = client.get(api.url("/docs")).send().await.expect("request");
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.expect("html").contains("swagger"), "the UI page");
    // The same document is available without a server.
    let offline: serde_json::Value =
        serde_json::from_str(&ttlc_api::openapi_json()).expect("valid JSON");
    assert_eq!(offline["paths"].as_object().map(|p| p.len()), Some(paths.len()));
}

#[tokio::test]
async fn every_failure_is_a_json_error_with_the_right_status() {
    let api = &*SHARED;
    let client = reqwest::Client::new();
    let op = token(Role::Operator, None);
    let (status, _, body) =
        error_of(client.get(api.url("/no/such/route")).send().await.expect("request")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _, _) =
        error_of(client.delete(api.url("/health")).send().await.expect("request")).await;
    assert_eq!(status, 405);
    let (status, _, _) =
        error_of(client.put(api.url("/streams")).bearer_auth(&op).send().await.expect("request"))
            .await;
    assert_eq!(status, 405);
    let invalid = [
        "/streams?limit=0",
        "/streams?limit=abc",
        "/streams?cursor=%%%",
        &format!("/sessions/{SESSION_A}/events?type=NOPE"),
        &format!("/sessions/{SESSION_A}/events?from=yesterday"),
        &format!("/streams/{STREAM_A}/events?lastEventId=banana"),
        &format!(
            "/analytics/streams/{STREAM_A}/summary?from=2026-11-20T19:00:00Z&to=2026-11-20T17:00:00Z"
        ),
        &format!("/analytics/streams/{STREAM_A}/top-gifters?limit=1000"),
        "/taps/unified?type=BOGUS",
    ];
    for path in invalid {
        let (status, _, body) =
            error_of(client.get(api.url(path)).bearer_auth(&op).send().await.expect("request"))
                .await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    let notes = api.url(&format!("/users/{USER_BOTH}/notes"));
    for body in [r#"{"note": {"a": 1}}"#, r#"{}"#, r#"not json"#, r#"{"note": ""}"#] {
        let response = client
            .post(&notes)
            .bearer_auth(&op)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let (status, _, error) = error_of(response).await;
        assert_eq!(status, 422, "{body}: {error}");
    }
    let big = format!(r#"{{"note": "{}"}}"#, "x".repeat(70 * 1024));
    let response = client
        .post(&notes)
        .bearer_auth(&op)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("request");
    let (status, _, body) = error_of(response).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")));
    // A chunked body (no Content-Length) is limited too.
    let chunks = futures::stream::iter((0..80).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let response = client
        .post(&notes)
        .bearer_auth(&op)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("request");
    assert_eq!(error_of(response).await.0, 413);
    // 404s for things that do not exist.
    for path in [
        "/streams/424242",
        "/streams/424242/sessions",
        "/sessions/nope/events",
        "/users/424242",
        "/taps/raw",
    ] {
        let (status, _, body) =
            error_of(client.get(api.url(path)).bearer_auth(&op).send().await.expect("request"))
                .await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let response = client
        .post(api.url("/sessions/nope/replay"))
        .bearer_auth(&op)
        .json(&serde_json::json!({"speed": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(error_of(response).await.0, 404);
    // A user who never appeared in the moderator's stream does not exist for them.
    let response = client
        .get(api.url("/users/9000002"))
        .bearer_auth(token(Role::Moderator, Some(STREAM_B)))
        .send()
        .await
        .expect("request");
    assert_eq!(error_of(response).await.0, 404);
}

#[tokio::test]
async fn health_reports_dependencies_and_metrics_are_prometheus_text() {
    let api = &*SHARED;
    let client = reqwest::Client::new();
    let response = client.get(api.url("/health")).send().await.expect("request");
    assert_eq!(response.status(), 200);
    let health: serde_json::Value = response.json().await.expect("json");
    assert_eq!(health["status"], "ok", "{health}");
    for dep in ["broker", "postgres", "clickhouse"] {
        assert_eq!(health["dependencies"][dep]["status"], "up", "{dep}: {health}");
    }
    assert!(health["uptimeSeconds"].is_u64());
    // Lag per stage group is computed in the background, right after start and every 15 s.
    let mut groups = Vec::new();
    for _ in 0..100 {
        let health: serde_json::Value = client
            .get(api.url("/health"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        groups = health["consumerLag"]
            .as_array()
            .expect("consumerLag")
            .iter()
            .filter_map(|g| g["group"].as_str().map(|name| (name.to_owned(), g["lag"].as_i64())))
            .collect();
        if !groups.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let prefix = &api.config.runner.group_prefix;
    for stage in ["normalizer", "archive-pg", "archive-ch", "rules", "execute"] {
        let group = format!("{prefix}{stage}");
        assert!(
            groups.iter().any(|(g, lag)| *g == group && lag.is_some_and(|l| l >= 0)),
            "{group} in {groups:?}"
        );
    }
    let metrics =
        client.get(api.url("/metrics")).send().await.expect("request").text().await.expect("text");
    assert!(metrics.contains("ttlc_http_requests_total"), "{metrics}");
    assert!(metrics.contains("ttlc_http_request_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("ttlc_live_slow_clients_dropped"), "{metrics}");
}

/// The per-IP limit keys on `X-Forwarded-For` only when the request comes from a trusted proxy:
/// otherwise a client could dodge its limit by sending a new forged address every time.
#[tokio::test]
async fn the_ip_limit_believes_x_forwarded_for_only_from_trusted_proxies() {
    let op = token(Role::Operator, None);
    let client = reqwest::Client::new();
    let statuses = |api: TestApi, forwarded: Vec<Option<&'static str>>| {
        let (client, op) = (client.clone(), op.clone());
        async move {
            let mut out = Vec::new();
            for xff in forwarded {
                let mut request = client.get(api.url("/streams")).bearer_auth(&op);
                if let Some(xff) = xff {
                    request = request.header("x-forwarded-for", xff);
                }
                out.push(request.send().await.expect("request").status().as_u16());
            }
            api.finish().await;
            out
        }
    };

    let mut config = config("api-xff").await;
    config.http.rate_limit_ip_per_sec = 0.1;
    config.http.rate_limit_ip_burst = 2;
    let untrusted = TestApi::start(config.clone()).await;
    let forged = vec![Some("203.0.113.1"), Some("203.0.113.2"), Some("203.0.113.3")];
    assert_eq!(statuses(untrusted, forged).await, vec![200, 200, 429]);

    let mut config = support::config("api-xff-t").await;
    config.http.rate_limit_ip_per_sec = 0.1;
    config.http.rate_limit_ip_burst = 2;
    // The test client connects from loopback: that is the "load balancer".
    config.http.trusted_proxies = vec!["127.0.0.0/8".into(), "::1".into()];
    let behind_proxy = TestApi::start(config.clone()).await;
    let a = Some("198.51.100.7, 203.0.113.1");
    let b = Some("198.51.100.7, 203.0.113.2");
    assert_eq!(
        statuses(behind_proxy, vec![a, a, a, b, None, None, None]).await,
        // a: two allowed then limited; b (same forged prefix, other real client): its own bucket;
        // no header: the proxy's own address, a third bucket.
        vec![200, 200, 429, 200, 200, 200, 429]
    );

    config.http.trusted_proxies = vec!["proxy.internal".into()];
    let refused = ttlc_api::bind(&config, ttlc_api::ApiDeps::default(), Default::default()).await;
    let error = refused.expect_err("an invalid trusted proxy is refused").to_string();
    assert!(error.contains("proxy.internal"), "{error}");
    support::drop_databases(&config).await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut config = config("api-429").await;
    config.http.rate_limit_ip_per_sec = 0.5;
    config.http.rate_limit_ip_burst = 3;
    let api = TestApi::start(config).await;
    let client = reqwest::Client::new();
    let op = token(Role::Operator, None);
    for _ in 0..3 {
        assert_eq!(
            client
                .get(api.url("/streams"))
                .bearer_auth(&op)
                .send()
                .await
                .expect("request")
                .status(),
            200
        );
    }
    let (status, retry_after, body) =
        error_of(client.get(api.url("/streams")).bearer_auth(&op).send().await.expect("request"))
            .await;
    assert_eq!((status, body["error"].as_str()), (429, Some("rate_limited")));
    assert!(retry_after.and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1));
    // Probes are never limited.
    assert_eq!(client.get(api.url("/health")).send().await.expect("request").status(), 200);
    api.finish().await;

    let mut config = support::config("api-429u").await;
    config.http.rate_limit_user_per_sec = 0.5;
    config.http.rate_limit_user_burst = 2;
    config.http.max_connections_per_user = 1;
    let api = TestApi::start(config).await;
    let viewer = token(Role::Viewer, Some(STREAM_A));
    for _ in 0..2 {
        assert_eq!(
            client
                .get(api.url("/streams"))
                .bearer_auth(&viewer)
                .send()
                .await
                .expect("request")
                .status(),
            200
        );
    }
    let (status, retry_after, _) = error_of(
        client.get(api.url("/streams")).bearer_auth(&viewer).send().await.expect("request"),
    )
    .await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some());
    // Another user is not affected.
    let other = token(Role::Moderator, Some(STREAM_A));
    let first = client
        .get(api.url(&format!("/streams/{STREAM_A}/events")))
        .bearer_auth(&other)
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), 200);
    // A second live connection of the same user exceeds its limit of one.
    let second = client
        .get(api.url(&format!("/streams/{STREAM_A}/events")))
        .bearer_auth(&other)
        .send()
        .await
        .expect("request");
    let (status, retry_after, body) = error_of(second).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some());
    drop(first);
    api.finish().await;
}

#[tokio::test]
async fn a_database_outage_is_503_with_retry_after() {
    let mut config = config("api-503").await;
    let original = config.clone();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    config.postgres.url = format!("postgres://ttlc:ttlc@127.0.0.1:{port}/ttlc");
    config.clickhouse.url = format!("http://127.0.0.1:{port}/ttlc");
    let api = TestApi::start(config).await;
    let client = reqwest::Client::new();
    let op = token(Role::Operator, None);
    let history = [
        "/streams".to_owned(),
        format!("/streams/{STREAM_A}"),
        format!("/streams/{STREAM_A}/sessions"),
        format!("/sessions/{SESSION_A}/events"),
        format!("/users/{USER_BOTH}"),
        format!("/analytics/streams/{STREAM_A}/summary"),
        "/analytics/global/top-gifters".to_owned(),
    ];
    for path in history {
        let (status, retry_after, body) =
            error_of(client.get(api.url(&path)).bearer_auth(&op).send().await.expect("request"))
                .await;
        assert_eq!((status, body["error"].as_str()), (503, Some("service_unavailable")), "{path}");
        assert_eq!(retry_after.as_deref(), Some("5"), "{path}");
    }
    let response = client.get(api.url("/health")).send().await.expect("request");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let health: serde_json::Value = response.json().await.expect("json");
    assert_eq!(health["status"], "down");
    assert_eq!(health["dependencies"]["postgres"]["status"], "down");
    assert_eq!(health["dependencies"]["broker"]["status"], "up");
    api.shutdown.cancel();
    drop_databases(&original).await;
}

fn openssl(args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

#[tokio::test]
async fn production_keys_verify_rs256_and_es256_and_refuse_hs256() {
    let dir = std::env::temp_dir().join(format!("ttlc-api-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &path("rsa.pem"),
    ]);
    openssl(&["pkey", "-in", &path("rsa.pem"), "-pubout", "-out", &path("rsa.pub.pem")]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &path("ec.pem"),
    ]);
    openssl(&["pkey", "-in", &path("ec.pem"), "-pubout", "-out", &path("ec.pub.pem")]);
    let claims = ttlc_api::Claims {
        sub: "prod-user".into(),
        role: Role::Viewer,
        stream_id: Some(STREAM_A.into()),
        exp: (chrono::Utc::now().timestamp() + 600) as u64,
        iat: 0,
    };
    let client = reqwest::Client::new();
    for (alg, private, public) in
        [("RS256", "rsa.pem", "rsa.pub.pem"), ("ES256", "ec.pem", "ec.pub.pem")]
    {
        let mut config = config("api-keys").await;
        config.http.jwt_public_key_path = path(public);
        config.http.jwt_algorithm = alg.into();
        let api = TestApi::start(config).await;
        let pem = std::fs::read(path(private)).expect("private key");
        let (key, algorithm) = match alg {
            "RS256" => (
                jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("rsa"),
                jsonwebtoken::Algorithm::RS256,
            ),
            _ => (
                jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("ec"),
                jsonwebtoken::Algorithm::ES256,
            ),
        };
        let good = jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &claims, &key)
            .expect("sign");
        let url = api.url(&format!("/streams/{STREAM_A}/sessions"));
        assert_eq!(
            client.get(&url).bearer_auth(&good).send().await.expect("request").status(),
            404,
            "{alg}: valid token, stream not seeded in this database"
        );
        let dev = token(Role::Viewer, Some(STREAM_A));
        assert_eq!(
            client.get(&url).bearer_auth(&dev).send().await.expect("request").status(),
            401,
            "{alg}: HS256 refused"
        );
        api.finish().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tokens_are_accepted_from_the_query_and_cookie() {
    let api = &*SHARED;
    let client = reqwest::Client::new();
    let t = token(Role::Viewer, Some(STREAM_A));
    let url = api.url(&format!("/streams/{STREAM_A}"));
    assert_eq!(
        client.get(format!("{url}?access_token={t}")).send().await.expect("request").status(),
        200
    );
    assert_eq!(
        client
            .get(&url)
            .header("cookie", format!("theme=dark; access_token={t}"))
            .send()
            .await
            .expect("request")
            .status(),
        200
    );
    assert_eq!(client.get(&url).send().await.expect("request").status(), 401);
}

#[tokio::test]
async fn shutdown_ends_live_feeds_with_a_reason() {
    let config = config("api-shutdown").await;
    let api = TestApi::start(config).await;
    let client = reqwest::Client::new();
    let response = client
        .get(api.url(&format!("/streams/{STREAM_A}/events")))
        .bearer_auth(token(Role::Moderator, Some(STREAM_A)))
        .send()
        .await
        .expect("request");
    let mut sse = SseReader::new(response);
    api.shutdown.cancel();
    let close = sse.next(Duration::from_secs(10)).await.expect("a closing event");
    assert_eq!(close.event.as_deref(), Some("close"));
    assert!(close.data.contains("shutting down"), "{}", close.data);
    assert!(sse.next(Duration::from_secs(10)).await.is_none(), "the stream ends");
    api.finish().await;
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let mut config = config("api-cors").await;
    config.http.cors_origins = vec!["https://dash.example.com".into()];
    let api = TestApi::start(config).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, api.url("/streams"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://dash.example.com").await.expect("request");
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://dash.example.com")
    );
    let refused = preflight("https://evil.example.com").await.expect("request");
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    api.finish().await;
}
