/// libFuzzer target over what `qmplog import` reads from a file: libvirt's per-domain log (first
/// byte even) or a `virsh qemu-monitor-event` transcript (odd), fed line by line as the importer
/// does. Built and run by `Scripts/fuzz.sh` with the parsers and the records they make compiled
/// into one module.
///
/// Invariants, checked with `precondition` (a failure is a crash libFuzzer keeps):
/// - nothing traps (no arithmetic on file input overflows), memory stays within libFuzzer's limits;
/// - every event's time is an instant or none, and its receive time is never negative;
/// - reading the text whole (split on every line end) or line by line gives the same events.

@_cdecl("LLVMFuzzerTestOneInput")
public func historyImportFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
    if data[0] % 2 == 0 {
        let whole = LibvirtLogParser(text: text)
        var streamed = LibvirtLogParser()
        for line in lines { streamed.read(line) }
        precondition(whole.events.map(\.importKey) == streamed.events.map(\.importKey), "keys differ")
        precondition(whole.name == streamed.name && whole.uuid == streamed.uuid, "identity differs")
        whole.events.forEach(check)
    } else {
        let whole = VirshEventParser(text: text)
        var streamed = VirshEventParser()
        for line in lines { streamed.read(line) }
        streamed.finish()
        precondition(whole.eventCount == streamed.eventCount, "event counts differ")
        whole.events.values.joined().forEach(check)
    }
    return 0
}

private func check(_ imported: ImportedEvent) {
    let event = imported.event
    if let time = event.time {
        precondition(time >= 0 && time <= 253_402_300_799_999_999, "time \(time) out of range")
    }
    precondition(event.received >= 0, "receive time \(event.received) is negative")
    precondition(!imported.importKey.isEmpty, "an event without an import key")
}
