//! `log` actions: a structured log line. The durable record is the `actions_log` row every
//! action gets; the log line is for operators tailing the executor. The rendered text is logged
//! at debug only, since it can carry user names (no PII at info level).

use ttlc_schemas::ActionRequest;

pub(crate) fn log(action: &ActionRequest) {
    let warn = action.params.get("level").and_then(|v| v.as_str()) == Some("warn");
    if warn {
        tracing::warn!(action_id = %action.action_id, rule_id = %action.rule_id, event_id = %action.event_id,
                       stream_id = %action.stream_id, "Rule log action.");
    } else {
        tracing::info!(action_id = %action.action_id, rule_id = %action.rule_id, event_id = %action.event_id,
                       stream_id = %action.stream_id, "Rule log action.");
    }
    tracing::debug!(action_id = %action.action_id, text = %action.rendered_template, "Rule log action text.");
}
