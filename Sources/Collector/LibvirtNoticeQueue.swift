import Dispatch
import Libvirt
import Synchronization

/// Carries notices from libvirt's event loop thread to the task that records them, in order.
///
/// Bounded: when ``limit`` notices wait, the event loop thread waits too, so libvirtd holds the
/// backlog (the counterpart of a monitor socket that stops being read), until the recorder, itself
/// waiting for the writer, catches up.
final class LibvirtNoticeQueue: Sendable {
    private struct State {
        var notices: [LibvirtNotice] = []
        var consumer: CheckedContinuation<Void, Never>?
        var producerWaiting = false
        /// Set once the consumer stops waiting for more: producers never block after it.
        var draining = false
    }

    let limit: Int
    private let state = Mutex(State())
    private let space = DispatchSemaphore(value: 0)

    init(limit: Int = 10_000) {
        self.limit = max(1, limit)
    }

    /// Queues a notice; blocks libvirt's thread while the queue is full.
    func put(_ notice: LibvirtNotice) {
        let (consumer, mustWait) = state.withLock { state in
            state.notices.append(notice)
            let mustWait = state.notices.count >= limit && !state.draining
            if mustWait { state.producerWaiting = true }
            defer { state.consumer = nil }
            return (state.consumer, mustWait)
        }
        consumer?.resume()
        if mustWait { space.wait() }
    }

    /// The notices queued so far, waiting for at least one; empty once the task is cancelled.
    func take() async -> [LibvirtNotice] {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state in
                    guard state.notices.isEmpty, !state.draining else { return true }
                    state.consumer = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
            return Task.isCancelled ? [] : takeQueued()
        } onCancel: {
            stopWaiting()
        }
    }

    /// What is queued now, without waiting; after ``stopWaiting()``, what came in until then.
    func takeQueued() -> [LibvirtNotice] {
        let (notices, producerWaiting) = state.withLock { state in
            defer {
                state.notices = []
                state.producerWaiting = false
            }
            return (state.notices, state.producerWaiting)
        }
        if producerWaiting { space.signal() }
        return notices
    }

    /// Stops ``take()`` waiting and never blocks a producer again (the recorder is stopping).
    func stopWaiting() {
        let (consumer, producerWaiting) = state.withLock { state in
            state.draining = true
            defer {
                state.consumer = nil
                state.producerWaiting = false
            }
            return (state.consumer, state.producerWaiting)
        }
        consumer?.resume()
        if producerWaiting { space.signal() }
    }
}
