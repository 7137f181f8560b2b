import Foundation

enum DeviceInfo {
    /// The hardware model identifier (`iPhone15,2`, ...; `arm64`/`x86_64` plus the simulated model on the
    /// simulator), as docs/bench-format.md asks for `device`.
    static var modelIdentifier: String {
        if let simulated = ProcessInfo.processInfo.environment["SIMULATOR_MODEL_IDENTIFIER"] {
            return "\(simulated) (simulator)"
        }
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
