import Synchronization

/// Lets a bounded number of VMs attach at once: connect, handshake and session row
/// (``CollectorConfiguration/maximumConcurrentAttaches``, 64 by default). The identification
/// queries come after, outside the limit: a VM in an event storm answers them only behind its
/// events, and must not hold a place meanwhile.
///
/// With a thousand sockets, attaching to all of them at once put a thousand handshakes in flight:
/// their buffers, JSON trees and async frames all existed together, and the heap never shrank back
/// (measured: peak heap 24 MiB, half of it the handshakes' frames). Attaches are short (a few
/// milliseconds; the session rows are written one at a time anyway), so a few dozen at once start
/// a fleet as fast. A VM that never greets holds its place only until the greeting timeout.
final class AttachLimiter: Sendable {
    private struct State {
        var available: Int
        var waiting: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextId: UInt64 = 0
    }

    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(available: max(1, limit)))
    }

    /// Waits for a place.
    ///
    /// - Returns: the place, to give back with ``AttachPermit/release()`` once attached.
    /// - Throws: `CancellationError` when the task is cancelled while it waits.
    func acquire() async throws -> AttachPermit {
        let id = state.withLock { state in
            defer { state.nextId += 1 }
            return state.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let granted = state.withLock { state -> Result<Bool, CancellationError> in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.available > 0 {
                        state.available -= 1
                        return .success(true)
                    }
                    state.waiting.append((id, continuation))
                    return .success(false)
                }
                switch granted {
                case .success(true): continuation.resume()
                case .success(false): break
                case .failure(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
        return AttachPermit(limiter: self)
    }

    /// Gives a place back: to the first waiter, else to the pool.
    fileprivate func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard !state.waiting.isEmpty else {
                state.available += 1
                return nil
            }
            return state.waiting.removeFirst().continuation
        }
        next?.resume()
    }
}

/// One place among the attaches in flight; releasing it again does nothing.
final class AttachPermit: Sendable {
    private let limiter: AttachLimiter
    private let released = Atomic<Bool>(false)

    fileprivate init(limiter: AttachLimiter) {
        self.limiter = limiter
    }

    func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        limiter.release()
    }
}
