/// Runs `body` in a child task of its own and returns what it returns.
///
/// Swift's task allocator keeps, for as long as a task lives, the memory its deepest chain of async
/// frames ever needed (it reuses its slabs but never gives them back). A recorder keeps one task
/// per VM for days; the one-time steps of an attach (connecting, the handshake, the queries, the
/// session row) go deepest, so they run in a child that ends, and the long-lived task only ever
/// holds the shallow frames of waiting. Measured with 1,000 VMs: see BENCHMARKS.md.
///
/// - Parameter value: handed to `body` in the child; the caller waits for the child to end, so the
///   value is never used from two tasks at once (this is what makes handing it over safe).
public func inShortLivedTask<Value, Result: Sendable>(
    with value: Value,
    _ body: @escaping @Sendable (Value) async throws -> Result
) async throws -> Result {
    let handOver = HandOver(value: value)
    return try await withThrowingTaskGroup(of: Result.self) { group in
        group.addTask { try await body(handOver.value) }
        // One child, which returns or throws: `next()` has a value or rethrows.
        guard let result = try await group.next() else { throw CancellationError() }
        return result
    }
}

/// Runs `body` in a child task of its own and returns what it returns (see
/// ``inShortLivedTask(with:_:)``).
public func inShortLivedTask<Result: Sendable>(
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await inShortLivedTask(with: ()) { _ in try await body() }
}

/// A value that crosses into the child of ``inShortLivedTask(with:_:)`` while its owner waits.
private struct HandOver<Value>: @unchecked Sendable {
    let value: Value
}
