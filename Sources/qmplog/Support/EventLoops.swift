import NIOCore

/// How many threads read QMP sockets: one, for every VM.
///
/// QMP traffic is light: a thousand VMs send a few thousand small events a second, which one
/// thread reads with ease, while the writer's thread does the SQLite work. Two event-loop threads
/// (NIO's default here: one per core) woke each other's cores for a handful of events each; one
/// thread took 11 % less CPU with 1,000 quiet VMs (BENCHMARKS.md). Must run before anything uses
/// NIO's shared event loop group.
enum EventLoops {
    static func useOneThread() {
        NIOSingletons.groupLoopCountSuggestion = 1
    }
}
