//! The one schema every reader maps onto: ECS names, plus the Windows event data fields the
//! Sysmon and Security readers pass through before deriving ECS from them.

use crate::event::FieldId;

macro_rules! core_fields {
    ($($konst:ident = $name:literal,)*) => {
        /// Core field names, in [`FieldId`] order.
        pub const CORE: &[&str] = &[$($name,)*];
        core_fields!(@ids 0u16, $($konst,)*);
    };
    (@ids $n:expr, $k:ident, $($rest:ident,)*) => {
        pub const $k: FieldId = $n;
        core_fields!(@ids $n + 1u16, $($rest,)*);
    };
    (@ids $n:expr,) => {};
}

core_fields! {
    TIMESTAMP = "@timestamp",
    EVENT_ACTION = "event.action",
    EVENT_CATEGORY = "event.category",
    EVENT_CODE = "event.code",
    EVENT_TYPE = "event.type",
    EVENT_DATASET = "event.dataset",
    EVENT_MODULE = "event.module",
    EVENT_PROVIDER = "event.provider",
    EVENT_OUTCOME = "event.outcome",
    PROCESS_NAME = "process.name",
    PROCESS_EXECUTABLE = "process.executable",
    PROCESS_PID = "process.pid",
    PROCESS_ARGS = "process.args",
    PROCESS_ARGS_COUNT = "process.args_count",
    PROCESS_COMMAND_LINE = "process.command_line",
    PARENT_NAME = "process.parent.name",
    PARENT_EXECUTABLE = "process.parent.executable",
    PARENT_PID = "process.parent.pid",
    SOURCE_IP = "source.ip",
    SOURCE_PORT = "source.port",
    DESTINATION_IP = "destination.ip",
    DESTINATION_PORT = "destination.port",
    NETWORK_TRANSPORT = "network.transport",
    NETWORK_DIRECTION = "network.direction",
    NETWORK_PROTOCOL = "network.protocol",
    DNS_QUESTION_NAME = "dns.question.name",
    URL_PATH = "url.path",
    URL_ORIGINAL = "url.original",
    HTTP_METHOD = "http.request.method",
    HTTP_STATUS = "http.response.status_code",
    USER_NAME = "user.name",
    HOST_NAME = "host.name",
    ZEEK_STATE = "zeek.connection.state",
    ZEEK_UID = "zeek.session_id",
    CORRAL_DECISION = "corral.decision",
    CORRAL_REASON = "corral.reason",
    CORRAL_CLASS = "corral.endpoint_class",
    CORRAL_ROUTE = "corral.route",
    CORRAL_KEY_ID = "corral.key_id",
    CORRAL_POLICY = "corral.policy",
    WIN_CHANNEL = "winlog.channel",
    WD_IMAGE = "winlog.event_data.Image",
    WD_PARENT_IMAGE = "winlog.event_data.ParentImage",
    WD_COMMAND_LINE = "winlog.event_data.CommandLine",
    WD_PARENT_COMMAND_LINE = "winlog.event_data.ParentCommandLine",
    WD_INITIATED = "winlog.event_data.Initiated",
    WD_SOURCE_IP = "winlog.event_data.SourceIp",
    WD_SOURCE_PORT = "winlog.event_data.SourcePort",
    WD_DESTINATION_IP = "winlog.event_data.DestinationIp",
    WD_DESTINATION_PORT = "winlog.event_data.DestinationPort",
    WD_PROTOCOL = "winlog.event_data.Protocol",
    WD_QUERY_NAME = "winlog.event_data.QueryName",
    WD_APPLICATION = "winlog.event_data.Application",
    WD_SOURCE_ADDRESS = "winlog.event_data.SourceAddress",
    WD_PROCESS_ID = "winlog.event_data.ProcessId",
    WD_PARENT_PROCESS_ID = "winlog.event_data.ParentProcessId",
    WD_UTC_TIME = "winlog.event_data.UtcTime",
}

/// JSON paths of the other JSON dialects (evtx_dump, Winlogbeat, Zeek JSON), and the core
/// field each lands in.
pub const JSON_ALIASES: &[(&str, &str)] = &[
    // evtx_dump JSON
    ("Event.System.EventID", "event.code"),
    ("Event.System.EventID.#text", "event.code"),
    (
        "Event.System.TimeCreated.#attributes.SystemTime",
        "@timestamp",
    ),
    ("Event.System.Provider.#attributes.Name", "event.provider"),
    ("Event.System.Channel", "winlog.channel"),
    ("Event.System.Computer", "host.name"),
    ("Event.EventData.Image", "winlog.event_data.Image"),
    (
        "Event.EventData.ParentImage",
        "winlog.event_data.ParentImage",
    ),
    (
        "Event.EventData.CommandLine",
        "winlog.event_data.CommandLine",
    ),
    (
        "Event.EventData.ParentCommandLine",
        "winlog.event_data.ParentCommandLine",
    ),
    ("Event.EventData.Initiated", "winlog.event_data.Initiated"),
    ("Event.EventData.SourceIp", "winlog.event_data.SourceIp"),
    ("Event.EventData.SourcePort", "winlog.event_data.SourcePort"),
    (
        "Event.EventData.DestinationIp",
        "winlog.event_data.DestinationIp",
    ),
    (
        "Event.EventData.DestinationPort",
        "winlog.event_data.DestinationPort",
    ),
    ("Event.EventData.Protocol", "winlog.event_data.Protocol"),
    ("Event.EventData.QueryName", "winlog.event_data.QueryName"),
    (
        "Event.EventData.Application",
        "winlog.event_data.Application",
    ),
    (
        "Event.EventData.SourceAddress",
        "winlog.event_data.SourceAddress",
    ),
    ("Event.EventData.ProcessId", "winlog.event_data.ProcessId"),
    ("Event.EventData.ProcessID", "winlog.event_data.ProcessId"),
    (
        "Event.EventData.ParentProcessId",
        "winlog.event_data.ParentProcessId",
    ),
    ("Event.EventData.UtcTime", "winlog.event_data.UtcTime"),
    // Winlogbeat
    ("winlog.event_id", "event.code"),
    ("winlog.provider_name", "event.provider"),
    ("winlog.computer_name", "host.name"),
    ("winlog.event_data.ProcessID", "winlog.event_data.ProcessId"),
    // Zeek JSON (conn.log)
    ("ts", "@timestamp"),
    ("uid", "zeek.session_id"),
    ("id.orig_h", "source.ip"),
    ("id.orig_p", "source.port"),
    ("id.resp_h", "destination.ip"),
    ("id.resp_p", "destination.port"),
    ("proto", "network.transport"),
    ("service", "network.protocol"),
    ("conn_state", "zeek.connection.state"),
];

/// Zeek conn.log and http.log column → core field (http.log's `uri` is the request target,
/// ECS `url.original`; the reader derives `url.path` from it).
pub fn zeek_column(name: &str) -> Option<FieldId> {
    Some(match name {
        "method" => HTTP_METHOD,
        "uri" => URL_ORIGINAL,
        "status_code" => HTTP_STATUS,
        "ts" => TIMESTAMP,
        "uid" => ZEEK_UID,
        "id.orig_h" => SOURCE_IP,
        "id.orig_p" => SOURCE_PORT,
        "id.resp_h" => DESTINATION_IP,
        "id.resp_p" => DESTINATION_PORT,
        "proto" => NETWORK_TRANSPORT,
        "service" => NETWORK_PROTOCOL,
        "conn_state" => ZEEK_STATE,
        _ => return None,
    })
}
