import Synchronization
import Testing

@testable import Collector

/// At most a bounded number of VMs attach at once; waiting stops on cancellation; places are not lost.
struct AttachLimiterTests {
    @Test func noMoreThanTheLimitHoldAPlaceAtOnce() async throws {
        let limiter = AttachLimiter(limit: 2)
        let holders = Holders()
        // When six attaches want a place at once
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let permit = try await limiter.acquire()
                    holders.state.withLock {
                        $0.now += 1
                        $0.most = max($0.most, $0.now)
                    }
                    try await Task.sleep(for: .milliseconds(20))
                    holders.state.withLock {
                        $0.now -= 1
                        $0.done += 1
                    }
                    permit.release()
                }
            }
            try await group.waitForAll()
        }
        // Then all of them got one, never more than two at a time
        let result = holders.state.withLock { $0 }
        #expect(result.done == 6)
        #expect(result.most == 2)
    }

    @Test func aCancelledWaiterStopsWaitingAndTakesNoPlace() async throws {
        let limiter = AttachLimiter(limit: 1)
        let first = try await limiter.acquire()
        // Given an attach waiting behind the one place
        let waiter = Task { try await limiter.acquire() }
        try await Task.sleep(for: .milliseconds(50))
        // When it is cancelled (the recorder stops)
        waiter.cancel()
        // Then it stops waiting with a cancellation
        await #expect(throws: CancellationError.self) { _ = try await waiter.value }
        // And once the place is back, the next attach gets it at once
        first.release()
        let next = try await limiter.acquire()
        next.release()
    }

    @Test func releasingTwiceGivesBackOnePlace() async throws {
        let limiter = AttachLimiter(limit: 1)
        let permit = try await limiter.acquire()
        permit.release()
        permit.release()
        let second = try await limiter.acquire()
        // Then a third attach waits until the second releases
        let third = Task { try await limiter.acquire() }
        try await Task.sleep(for: .milliseconds(100))
        let holders = Holders()
        let watcher = Task {
            let permit = try await third.value
            holders.state.withLock { $0.done += 1 }
            permit.release()
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(holders.state.withLock { $0.done } == 0)
        second.release()
        try await watcher.value
        #expect(holders.state.withLock { $0.done } == 1)
    }
}

/// What the attaches of a test saw: holding a place now, the most at once, finished.
private final class Holders: Sendable {
    let state = Mutex((now: 0, most: 0, done: 0))
}
