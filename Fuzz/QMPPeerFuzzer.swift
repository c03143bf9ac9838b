/// libFuzzer target over every byte a QMP peer controls: the frame scanner, fed in chunks as a
/// socket delivers them, then the JSON parser, the recorder's event scanner, and the row it would
/// store. Built and run by `Scripts/fuzz.sh` (swiftc -sanitize=fuzzer), with the QMP sources,
/// EventStore's records and the recorder's event-to-row mapping compiled into one module.
///
/// Invariants, checked with `precondition` (a failure is a crash libFuzzer keeps):
/// - nothing traps, and memory stays within libFuzzer's limits;
/// - frames found with the input in chunks are the frames found with it whole;
/// - the event scanner says what the tree decoder says (the same event, or nothing);
/// - every stored field of the row can be computed (its time included).

@_cdecl("LLVMFuzzerTestOneInput")
public func qmpPeerFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    // The first byte picks the chunk size, as if the socket delivered that many bytes a read.
    let chunk = max(1, Int(input.first ?? 1))
    let whole = frames(of: input, chunk: input.count + 1)
    let chunked = frames(of: input, chunk: chunk)
    precondition(whole == chunked, "chunks of \(chunk) bytes framed the input differently")
    for frame in whole.frames { check(frame) }
    return 0
}

/// The frames the scanner finds when `input` arrives `chunk` bytes at a time, as QMPFrameDecoder
/// feeds it, and whether it stopped on an error.
private func frames(of input: [UInt8], chunk: Int) -> (frames: [[UInt8]], failed: Bool) {
    var scanner = QMPFrameScanner(maximumMessageSize: 1 << 16)
    var buffer: [UInt8] = []
    var found: [[UInt8]] = []
    var offset = 0
    while offset < input.count {
        buffer += input[offset..<min(input.count, offset + chunk)]
        offset += chunk
        while true {
            let result: QMPFrameScanner.Result
            do {
                result = try buffer.withUnsafeBytes { try scanner.scan($0) }
            } catch {
                return (found, true)
            }
            switch result {
            case .message(let range):
                found.append(Array(buffer[range]))
                buffer.removeFirst(range.upperBound)
                continue
            case .needMoreData(let discardable):
                buffer.removeFirst(discardable)
            }
            break
        }
    }
    return (found, false)
}

private func check(_ frame: [UInt8]) {
    frame.withUnsafeBufferPointer { bytes in
        let scanned = QMPEvent(scanning: bytes)
        let tree = try? QMPMessage(treeFrame: bytes)
        if case .event(let event)? = tree {
            precondition(scanned == event, "the scanner read \(String(describing: scanned)), the tree \(event)")
        } else {
            precondition(scanned == nil, "the scanner read an event the tree decoder refuses")
        }
        guard let event = scanned else { return }
        let row = NewEvent(
            event,
            session: SessionHandle(sessionId: 1, machineId: 1),
            seq: 1,
            received: 1_795_772_653_000_000
        )
        if let time = row.time {
            precondition(time >= 0 && time <= 253_402_300_799_999_999, "time \(time) out of range")
        }
    }
}
