//! ECS fields derived from what a dialect wrote: Sysmon and Windows Security event data,
//! Zeek connection records, corral's audit log. Derived values never replace fields the
//! record carried itself.

use std::borrow::Cow;

use crate::event::{Event, Val};
use crate::fields::*;
use crate::ip;

pub fn derive(ev: &mut Event<'_>) {
    if ev.get(EVENT_CODE).is_some()
        && (ev.get(EVENT_PROVIDER).is_some() || ev.get(WIN_CHANNEL).is_some())
    {
        windows(ev);
    }
    if ev.get(ZEEK_UID).is_some() && ev.get(ZEEK_STATE).is_some() {
        ev.set_default(EVENT_MODULE, Val::str("zeek"));
        ev.set_default(EVENT_DATASET, Val::str("zeek.conn"));
        ev.set_default(EVENT_CATEGORY, Val::str("network"));
    }
    if ev.get(CORRAL_DECISION).is_some() {
        ev.set_default(EVENT_MODULE, Val::str("corral"));
        ev.set_default(EVENT_DATASET, Val::str("corral.audit"));
    }
    common(ev);
}

/// Applied to every record of every reader: process.name from the executable, the command
/// line and argument count from the arguments, mapped addresses unwrapped, empty addresses
/// dropped.
pub fn common(ev: &mut Event<'_>) {
    args(ev);
    if ev.get(PROCESS_NAME).is_none() {
        if let Some(name) = ev.get(PROCESS_EXECUTABLE).and_then(|v| basename_val(v)) {
            ev.set(PROCESS_NAME, name);
        }
    }
    if ev.get(PARENT_NAME).is_none() {
        if let Some(name) = ev.get(PARENT_EXECUTABLE).and_then(|v| basename_val(v)) {
            ev.set(PARENT_NAME, name);
        }
    }
    for id in [SOURCE_IP, DESTINATION_IP] {
        // An empty address is no address (an ECS ip field would hold no value): dropped, so
        // `exists` is false and no "outside the internal ranges" rule matches it.
        if ev.str(id).is_some_and(|s| s.trim().is_empty()) {
            ev.take(id);
            continue;
        }
        if let Some(v4) = ev.str(id).and_then(ip::unmap_text) {
            ev.set(id, Val::Str(Cow::Owned(v4)));
        }
    }
}

/// `process.command_line` (the arguments joined with spaces, as auditd's reader and Elastic
/// Defend write it) and `process.args_count` from `process.args`, where the record has the
/// arguments only: rules that tell a bare `sh --version` from `sh -c CMD --version` read
/// both (see the shell rule).
fn args(ev: &mut Event<'_>) {
    let (line, count) = match ev.get(PROCESS_ARGS) {
        Some(Val::List(items)) => {
            let mut line = String::new();
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                line.push_str(&it.to_text());
            }
            (line, items.len())
        }
        Some(Val::Str(s)) => (s.to_string(), 1),
        _ => return,
    };
    if ev.get(PROCESS_COMMAND_LINE).is_none() && !line.is_empty() {
        ev.set(PROCESS_COMMAND_LINE, Val::Str(Cow::Owned(line)));
    }
    ev.set_default(PROCESS_ARGS_COUNT, Val::Num(count as f64));
}

/// The last component of a Windows or POSIX path.
pub fn basename(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

fn basename_val<'a>(v: &Val<'a>) -> Option<Val<'a>> {
    match v {
        Val::Str(Cow::Borrowed(s)) => Some(Val::Str(Cow::Borrowed(basename(s)))),
        Val::Str(Cow::Owned(s)) => Some(Val::Str(Cow::Owned(basename(s).to_string()))),
        _ => None,
    }
}

fn copy(ev: &mut Event<'_>, from: crate::event::FieldId, to: crate::event::FieldId) {
    if let Some(v) = ev.get(from).cloned() {
        ev.set_default(to, v);
    }
}

fn windows(ev: &mut Event<'_>) {
    let sysmon = [EVENT_PROVIDER, WIN_CHANNEL]
        .iter()
        .any(|f| ev.str(*f).is_some_and(|s| contains_ci(s, "sysmon")));
    let security = [EVENT_PROVIDER, WIN_CHANNEL]
        .iter()
        .any(|f| ev.str(*f).is_some_and(|s| contains_ci(s, "security")));
    let code = ev.get(EVENT_CODE).and_then(Val::as_i64);
    if sysmon {
        ev.set_default(EVENT_MODULE, Val::str("sysmon"));
        match code {
            Some(1) => {
                copy(ev, WD_IMAGE, PROCESS_EXECUTABLE);
                copy(ev, WD_COMMAND_LINE, PROCESS_COMMAND_LINE);
                copy(ev, WD_PARENT_IMAGE, PARENT_EXECUTABLE);
                copy(ev, WD_PROCESS_ID, PROCESS_PID);
                copy(ev, WD_PARENT_PROCESS_ID, PARENT_PID);
                ev.set_default(EVENT_CATEGORY, Val::str("process"));
                ev.set_default(EVENT_TYPE, Val::str("start"));
            }
            Some(3) => {
                copy(ev, WD_IMAGE, PROCESS_EXECUTABLE);
                copy(ev, WD_PROCESS_ID, PROCESS_PID);
                copy(ev, WD_SOURCE_IP, SOURCE_IP);
                copy(ev, WD_SOURCE_PORT, SOURCE_PORT);
                copy(ev, WD_DESTINATION_IP, DESTINATION_IP);
                copy(ev, WD_DESTINATION_PORT, DESTINATION_PORT);
                copy(ev, WD_PROTOCOL, NETWORK_TRANSPORT);
                ev.set_default(EVENT_CATEGORY, Val::str("network"));
                match ev.get(WD_INITIATED).and_then(Val::as_bool) {
                    // No event.action here: Elastic's rule is written for Elastic Defend data,
                    // and Sysmon has rules of its own.
                    Some(false) => ev.set_default(NETWORK_DIRECTION, Val::str("ingress")),
                    Some(true) => ev.set_default(NETWORK_DIRECTION, Val::str("egress")),
                    None => {}
                }
            }
            Some(22) => {
                copy(ev, WD_IMAGE, PROCESS_EXECUTABLE);
                copy(ev, WD_PROCESS_ID, PROCESS_PID);
                copy(ev, WD_QUERY_NAME, DNS_QUESTION_NAME);
                ev.set_default(EVENT_CATEGORY, Val::str("network"));
            }
            _ => {}
        }
    } else if security && code == Some(5158) {
        ev.set_default(EVENT_MODULE, Val::str("security"));
        copy(ev, WD_APPLICATION, PROCESS_EXECUTABLE);
        copy(ev, WD_PROCESS_ID, PROCESS_PID);
        copy(ev, WD_SOURCE_ADDRESS, SOURCE_IP);
        copy(ev, WD_SOURCE_PORT, SOURCE_PORT);
        ev.set_default(EVENT_CATEGORY, Val::str("network"));
        ev.set_default(EVENT_ACTION, Val::str("bound-socket"));
    }
    if ev.get(TIMESTAMP).is_none() {
        copy(ev, WD_UTC_TIME, TIMESTAMP);
    }
}

pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}
