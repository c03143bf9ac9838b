import Synchronization

/// Lets one request at a time read the database, the others waiting in arrival order.
///
/// The reports' reads block the thread that runs them (synchronous SQLite steps, on Swift's
/// cooperative pool of one thread per core): requests computing side by side would hold every
/// thread of the pool while each waits for the other's connection. One at a time, the pool stays
/// free for the HTTP side, and a report is no slower: each already keeps a core busy.
final class OneAtATime: Sendable {
    private struct State {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func run<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
        await withCheckedContinuation { continuation in
            let admitted = state.withLock { state in
                if state.busy {
                    state.waiting.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if admitted { continuation.resume() }
        }
        defer {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiting.isEmpty {
                    state.busy = false
                    return nil
                }
                return state.waiting.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}
