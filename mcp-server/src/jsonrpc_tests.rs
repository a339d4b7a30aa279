use super::*;
use serde_json::json;

fn rejected(input: &[u8]) -> Rejection {
    match parse_client_message(input) {
        Ok(message) => panic!(
            "{:?} was accepted as {message:?}",
            String::from_utf8_lossy(input)
        ),
        Err(rejection) => rejection,
    }
}

fn code(r: &Rejection) -> i32 {
    r.code.0
}

#[test]
fn input_that_is_not_json_is_a_parse_error_with_a_null_id() {
    for input in [
        &b"not json"[..],
        b"{",
        b"\xff\xfe",
        b"",
        b"{\"jsonrpc\":\"2.0\",}",
    ] {
        let r = rejected(input);
        assert_eq!(code(&r), -32700, "{input:?}");
        assert!(r.answerable);
        let reply = r.to_json();
        assert_eq!(reply["id"], Value::Null, "{reply}");
        assert!(
            reply.as_object().is_some_and(|o| o.contains_key("id")),
            "the id member is present (null), not left out: {reply}"
        );
        assert_eq!(reply["jsonrpc"], "2.0");
    }
}

#[test]
fn json_that_is_not_a_message_is_an_invalid_request() {
    for input in [
        "[]",
        "[1,2]",
        "42",
        "\"text\"",
        "null",
        "{}",
        r#"{"jsonrpc":"2.0"}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
        // Not a notification: not a valid message at all (JSON-RPC 2.0 §7's own example).
        r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#,
    ] {
        let r = rejected(input.as_bytes());
        assert_eq!(code(&r), -32600, "{input}: {r:?}");
        assert!(r.answerable, "{input}");
        assert_eq!(r.id, None, "{input}");
        assert_eq!(r.to_json()["id"], Value::Null);
    }
}

#[test]
fn an_invalid_request_keeps_its_readable_id() {
    for (input, id) in [
        (r#"{"jsonrpc":"2.0","id":5,"method":123}"#, json!(5)),
        (
            r#"{"jsonrpc":"2.0","id":"x","method":"ping","result":1}"#,
            json!("x"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":5}"#,
            json!(9),
        ),
        (r#"{"jsonrpc":"1.0","id":"v","method":"ping"}"#, json!("v")),
        (r#"{"id":7,"method":"ping"}"#, json!(7)),
        (r#"{"jsonrpc":"2.0","id":3}"#, json!(3)),
    ] {
        let r = rejected(input.as_bytes());
        assert_eq!(code(&r), -32600, "{input}");
        assert_eq!(r.to_json()["id"], id, "{input}");
    }
}

#[test]
fn an_mcp_request_whose_params_do_not_fit_is_invalid_params() {
    for input in [
        r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":5}}"#,
        r#"{"jsonrpc":"2.0","id":10,"method":"resources/read","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":10,"method":"tools/list","params":[1]}"#,
    ] {
        let r = rejected(input.as_bytes());
        assert_eq!(code(&r), -32602, "{input}: {r:?}");
        assert_eq!(r.to_json()["id"], 10, "{input}");
        assert!(r.answerable);
    }
}

#[test]
fn lifecycle_methods_are_left_to_rmcp() {
    // 2026-07-28 removed them: a stateless request for one must get -32601 from rmcp, not -32602.
    for input in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"_meta":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{}}"#,
    ] {
        assert!(parse_client_message(input.as_bytes()).is_ok(), "{input}");
    }
}

#[test]
fn notifications_and_responses_are_refused_without_an_answer() {
    for input in [
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{"x":1}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":5}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#,
    ] {
        let r = rejected(input.as_bytes());
        assert!(!r.answerable, "{input}: {r:?}");
        assert_eq!(r.id, None);
    }
}

#[test]
fn valid_messages_read_as_rmcp_reads_them() {
    let ok = |input: &str| {
        parse_client_message(input.as_bytes()).unwrap_or_else(|r| panic!("{input}: {r:?}"))
    };
    assert!(matches!(
        ok(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
        JsonRpcMessage::Request(_)
    ));
    assert!(matches!(
        ok(
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/list\",\"params\":{\"cursor\":\"c\"}}"
        ),
        JsonRpcMessage::Request(_)
    ));
    assert!(matches!(
        ok(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        JsonRpcMessage::Notification(_)
    ));
    // Unknown methods are rmcp's to answer (-32601) or to ignore (notifications).
    assert!(matches!(
        ok(r#"{"jsonrpc":"2.0","id":8,"method":"no/such"}"#),
        JsonRpcMessage::Request(_)
    ));
    assert!(matches!(
        ok(r#"{"jsonrpc":"2.0","method":"no/such","params":{"a":1}}"#),
        JsonRpcMessage::Notification(_)
    ));
    assert!(matches!(
        ok(r#"{"jsonrpc":"2.0","id":4,"result":{}}"#),
        JsonRpcMessage::Response(_)
    ));
    assert!(matches!(
        ok(r#"{"jsonrpc":"2.0","id":4,"error":{"code":-1,"message":"no"}}"#),
        JsonRpcMessage::Error(_)
    ));
    assert!(matches!(
        ok(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"trust_score","arguments":{"agent_id":"a"}}}"#
        ),
        JsonRpcMessage::Request(_)
    ));
}
