import ArgumentParser
import Hooks

// `record`'s options by what they are about, each group under its title in `--help`.

/// Where the VMs are: sockets to watch and listen on, libvirt daemons (TARGETs are arguments).
struct SourceOptions: ParsableArguments {
    @Option(
        name: .customLong("listen"),
        help: ArgumentHelp(
            "Listen on this Unix socket (created 0600) for QEMU to connect to; repeatable.",
            discussion: "QEMU: -chardev socket,id=qmplog,path=PATH,reconnect=5 -mon chardev=qmplog,mode=control",
            valueName: "path"
        )
    )
    var listenPaths: [String] = []

    @Option(
        help: ArgumentHelp(
            "Give --listen sockets this group and mode 0660, so that a QEMU running as another user in the group can connect.",
            discussion:
                "libvirt runs QEMU as libvirt-qemu (group kvm or libvirt-qemu); name that user with --listen-allow-uid too.",
            valueName: "group"
        )
    )
    var listenGroup: String?

    @Option(
        help: ArgumentHelp(
            "Accept --listen connections only from this user (name or uid) and qmplog's own; repeatable. Others are refused and logged with their pid and uid.",
            valueName: "user"
        )
    )
    var listenAllowUid: [String] = []

    @Option(
        name: .customLong("libvirt"),
        help: ArgumentHelp(
            "Record every domain of this libvirt daemon (default qemu:///system) through libvirt's QMP passthrough; repeatable.",
            valueName: "uri"
        )
    )
    var libvirtURIs: [String] = []

    @Option(
        name: .customLong("watch"),
        help: ArgumentHelp(
            "Record every socket matching --pattern in this directory, now or later; repeatable.",
            valueName: "dir"
        )
    )
    var watchDirectories: [String] = []

    @Option(help: ArgumentHelp("Which entries of a --watch directory are QMP sockets.", valueName: "glob"))
    var pattern = "*.qmp"
}

/// How monitors are attached and read.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Longest wait between reconnection attempts, in seconds (the wait starts at 0.5 s and doubles).")
    var retryMax: Double = 30

    @Option(help: "Seconds to wait for a monitor's greeting before calling it busy.")
    var greetingTimeout: Double = 5

    @Option(help: "Largest QMP message accepted, in bytes.")
    var maxMessageSize: Int = 16 << 20
}

/// `--on CLASS --exec COMMAND` and how their runs are bounded.
struct HookOptions: ParsableArguments {
    @Option(
        name: .customLong("on"),
        help: ArgumentHelp(
            "Run the --exec at the same position for each incident of these classes (comma-separated); repeatable.",
            discussion: "Classes: \(Hook.classNames).",
            valueName: "class"
        )
    )
    var hookClasses: [String] = []

    @Option(
        name: .customLong("exec"),
        help: ArgumentHelp(
            "The command an --on runs: split into words like a shell would, never through one; the incident is in its QMPLOG_* environment.",
            valueName: "command"
        )
    )
    var hookCommands: [String] = []

    @Option(help: ArgumentHelp("Stop a hook's run after this many seconds.", valueName: "seconds"))
    var hookTimeout: Double = 120

    @Option(help: ArgumentHelp("Runs of one hook at once; more wait in its queue.", valueName: "count"))
    var hookConcurrency: Int = 4

    @Option(
        help: ArgumentHelp(
            "Runs of one hook that may wait; more of that hook's are dropped (logged and marked).",
            valueName: "count"
        )
    )
    var hookQueue: Int = 1_000

    @Option(
        name: .customLong("hook-env"),
        help: ArgumentHelp(
            "Pass this variable of qmplog's environment to hooks (repeatable); they get only PATH, LANG, LC_ALL, TZ and the QMPLOG_* variables otherwise.",
            valueName: "name"
        )
    )
    var hookEnvironment: [String] = []
}

/// `--ship-to` and how shipping goes.
struct RecordFleetOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Ship what is committed to the fleet's PostgreSQL, as `qmplog ship` does.",
            valueName: "url"
        )
    )
    var shipTo: String?

    @OptionGroup var ship: ShipOptions
}
