//! The API never parses XML: no route declares an XML request body. deploy/local/audit.sh relies
//! on this to accept the quick-xml advisories that poem-openapi pulls in.

#![allow(clippy::unwrap_used)]

#[test]
fn no_route_accepts_xml() {
    let doc: serde_json::Value = serde_json::from_str(&ttlc_api::openapi_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "the document lists the routes");
    let mut bodies = 0;
    for (path, methods) in paths {
        for (method, op) in methods.as_object().unwrap() {
            if let Some(content) = op["requestBody"]["content"].as_object() {
                bodies += 1;
                for media in content.keys() {
                    assert!(!media.contains("xml"), "{method} {path} accepts {media}");
                }
            }
        }
    }
    assert!(bodies > 0, "some routes take bodies, so the check looked at something");
}
