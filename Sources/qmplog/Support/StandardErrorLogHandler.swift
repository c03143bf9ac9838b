import Logging

/// What qmplog's two standard-error log handlers (text and JSON) share: metadata set per logger,
/// merged with each event's.
protocol StandardErrorLogHandler: LogHandler {
    var metadata: Logger.Metadata { get set }
}

extension StandardErrorLogHandler {
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The logger's metadata with the event's on top, by key.
    func metadata(of event: LogEvent) -> [(key: String, value: String)] {
        metadata.merging(event.metadata ?? [:]) { $1 }.map { (key: $0.key, value: "\($0.value)") }
            .sorted { $0.key < $1.key }
    }
}
