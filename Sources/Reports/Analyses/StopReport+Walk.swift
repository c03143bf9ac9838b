import EventStore

extension StopReport {
    /// Walks one VM's timeline.
    struct Walk {
        let machineId: Int64
        let query: ReportQuery
        let senders: [Int64: SignalSenderFact]
        var stops: [Stop] = []
        /// Panics, watchdog firings and kills: what a crash loop counts.
        var crashes: [Int64] = []
        /// The run has stopped (a SHUTDOWN) and not run again since.
        private var stopped = false
        private var lastPowerdown: Int64?
        private var panic: (time: Int64, action: String?)?
        private var watchdog: (time: Int64, action: String?)?
        private var lastPanic: Int64?
        /// When the previous session ended without the VM's end being seen (the recorder stopped).
        private var unwatchedSince: Int64?
        private var lastDomainId: String?
        /// Imported `shutting down` lines, with what preceded each in its run.
        private var libvirtLines: [(time: Int64, reason: String, stopped: Bool, panic: String??, sawRun: Bool)] = []
        /// Events of the current run were seen (a transcript or a recorder covered it).
        private var sawRun = false

        init(machineId: Int64, query: ReportQuery, senders: [Int64: SignalSenderFact]) {
            self.machineId = machineId
            self.query = query
            self.senders = senders
        }

        mutating func apply(_ item: Item, sessions: [Session]) {
            switch item.kind {
            case .start: start(sessions[Int(item.order)])
            case .end: end(sessions[Int(item.order)], at: item.time)
            default: apply(event: item)
            }
        }

        private mutating func start(_ session: Session) {
            let domainId = session.endpoint.hasPrefix("libvirt:") ? session.peer : nil
            let freshRun = session.initialStatus == "prelaunch" || (domainId != nil && domainId != lastDomainId)
            if let since = unwatchedSince, freshRun {
                stops.append(
                    Stop(
                        machineId: machineId,
                        time: since,
                        stopClass: .unknown,
                        evidence: "not watched from \(Timestamp.rfc3339(microseconds: since)) until "
                            + "\(Timestamp.rfc3339(microseconds: session.startedAt)), when it had started again"
                    )
                )
            }
            if freshRun { newRun() }
            unwatchedSince = nil
            lastDomainId = domainId ?? lastDomainId
        }

        /// The guest runs again (RESUME, RESET): what stopped or paused it is over.
        private mutating func resetRun() {
            stopped = false
            panic = nil
            watchdog = nil
        }

        /// Another QEMU process: nothing of the last one carries over.
        private mutating func newRun() {
            resetRun()
            sawRun = false
        }

        private mutating func apply(event: Item) {
            if event.kind != .libvirtShutdown { sawRun = true }
            switch event.kind {
            case .shutdown:
                guard !stopped else { return }
                stopped = true
                let (stopClass, evidence) = classify(event)
                stops.append(Stop(machineId: machineId, time: event.time, stopClass: stopClass, evidence: evidence))
            case .runs:
                resetRun()
            case .powerdown:
                lastPowerdown = event.time
            case .panic:
                panic = (event.time, event.action)
                if let last = lastPanic, event.time - last <= StopReport.panicRepeatWindow {
                    lastPanic = event.time
                    return
                }
                lastPanic = event.time
                crashes.append(event.time)
            case .watchdog:
                watchdog = (event.time, event.action)
                if event.action != "none", event.action != "debug" { crashes.append(event.time) }
            case .libvirtShutdown:
                libvirtLines.append((event.time, event.reason ?? "(none)", stopped, panic.map(\.action), sawRun))
                newRun()
            case .start, .end:
                break
            }
        }

        private func classify(_ event: Item) -> (StopClass, String) {
            let shutdown = "SHUTDOWN guest=\(event.guest.map(String.init) ?? "?") reason=\(event.reason ?? "(none)")"
            switch event.reason {
            case "guest-shutdown":
                if let powerdown = lastPowerdown, event.time >= powerdown,
                    event.time - powerdown <= query.powerdownWindow
                {
                    return (.hostACPI, "POWERDOWN at \(Timestamp.rfc3339(microseconds: powerdown)), then \(shutdown)")
                }
                if let watchdog, event.time - watchdog.time <= StopReport.watchdogWindow {
                    return (.watchdog, "WATCHDOG action=\(watchdog.action ?? "?"), then \(shutdown)")
                }
                return (.guestPoweroff, shutdown)
            case "host-signal":
                guard let sender = senders[event.time] else { return (.hostSignal, shutdown) }
                let program = sender.program ?? "an unknown process"
                let pid = sender.pid.map { "pid \($0) " } ?? ""
                return (
                    .hostSignal,
                    "\(shutdown): \(ShutdownReport.signalName(sender.signal)) from \(pid)(\(program))"
                )
            case "host-qmp-quit": return (.hostQMPQuit, shutdown)
            case "guest-panic":
                return (
                    .guestPanic,
                    panic.map { "GUEST_PANICKED action=\($0.action ?? "?"), then " }.map { $0 + shutdown } ?? shutdown
                )
            case "guest-reset": return (.guestResetNoReboot, shutdown)
            default:
                if event.reason == nil, event.guest == true { return (.guestPoweroff, shutdown) }
                return (.other, shutdown)
            }
        }

        private mutating func end(_ session: Session, at time: Int64) {
            let reason = session.endReason ?? ""
            let qemuGone = reason == "eof" || reason.hasPrefix("domain-stopped")
            guard qemuGone else {
                unwatchedSince = time
                return
            }
            defer {
                newRun()
                lastDomainId = nil
            }
            guard !stopped else { return }
            let closed =
                reason == "eof" ? "the monitor closed with no SHUTDOWN" : "libvirt: \(reason), with no SHUTDOWN"
            if let panic {
                stops.append(
                    Stop(
                        machineId: machineId,
                        time: time,
                        stopClass: .guestPanic,
                        evidence: "GUEST_PANICKED action=\(panic.action ?? "?"), then \(closed)"
                    )
                )
            } else if let watchdog, watchdog.action != "none", watchdog.action != "debug" {
                stops.append(
                    Stop(
                        machineId: machineId,
                        time: time,
                        stopClass: .watchdog,
                        evidence: "WATCHDOG action=\(watchdog.action ?? "?"), then \(closed)"
                    )
                )
            } else {
                stops.append(Stop(machineId: machineId, time: time, stopClass: .killed, evidence: closed))
                crashes.append(time)
            }
        }

        /// A run's end that only an imported libvirt log tells (`shutting down, reason=…` with no stop
        /// near it): after a panic, the panic's; `crashed` in a run whose events were seen (QEMU died
        /// with no SHUTDOWN), killed; otherwise nobody watched it.
        mutating func matchLibvirtLines() {
            for line in libvirtLines
            where !line.stopped && !stops.contains(where: { abs($0.time - line.time) <= StopReport.libvirtLineWindow })
            {
                let logged = "libvirt's log: shutting down, reason=\(line.reason)"
                let (stopClass, evidence): (StopClass, String) =
                    if let action = line.panic {
                        (.guestPanic, "GUEST_PANICKED action=\(action ?? "?"), then \(logged)")
                    } else if line.reason == "crashed", line.sawRun {
                        (.killed, "no SHUTDOWN, then \(logged)")
                    } else {
                        (.unknown, logged)
                    }
                stops.append(Stop(machineId: machineId, time: line.time, stopClass: stopClass, evidence: evidence))
                if stopClass == .killed { crashes.append(line.time) }
            }
        }
    }
}
