#include "agentless/remote_probe.hpp"

#include <openssl/rand.h>

#include <map>
#include <set>

#include "hwl/json.hpp"
#include "hwl/probes/exporters.hpp"
#include "hwl/probes/nvidia_smi.hpp"
#include "hwl/probes/rocm_smi.hpp"
#include "ssh/shell_quote.hpp"
#include "ssh/ssh_session.hpp"

namespace hwl::agentless {

namespace bj = boost::json;

namespace {

bool isNonce(std::string_view n) {
  if (n.size() != 16) return false;
  for (char c : n)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// 64 bits from the OpenSSL CSPRNG: one nonce seen tells nothing of the next.
std::string newNonce() {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char b[8] = {};
  if (RAND_bytes(b, sizeof b) != 1) return {};
  std::string n;
  for (unsigned char c : b) {
    n += kHex[c >> 4];
    n += kHex[c & 15];
  }
  return n;
}

// What a host prints is bounded and made valid UTF-8 before it reaches a sample, an event or a
// log: text fields at most kMaxText bytes, with no control characters.
constexpr size_t kMaxText = 256;
std::string bounded(std::string_view s, size_t max = kMaxText) {
  std::string v = json::validUtf8(s.substr(0, std::min(s.size(), max * 4)));
  if (v.size() > max) {
    size_t to = max;
    while (to > 0 && (static_cast<unsigned char>(v[to]) & 0xC0) == 0x80) --to;
    v.resize(to);
  }
  for (char& c : v)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return v;
}

Status boundSample(probes::Sample& s) {
  if (s.gpus.size() > kMaxGpus)
    return invalidArgument("the host reports " + std::to_string(s.gpus.size()) +
                           " GPUs, more than " + std::to_string(kMaxGpus));
  std::set<std::string> uuids;
  for (auto& g : s.gpus) {
    for (std::string* f : {&g.uuid, &g.name, &g.vendor, &g.driver_version, &g.pci_bus_id})
      *f = bounded(*f);
    if (g.uuid.empty() || !uuids.insert(g.uuid).second)
      return invalidArgument("the host reports a GPU without a uuid, or one uuid twice");
    if (g.processes.size() > kMaxProcesses) g.processes.resize(kMaxProcesses);
    for (auto& p : g.processes) p.name = bounded(p.name);
    if (g.mig_devices.size() > kMaxGpus) g.mig_devices.resize(kMaxGpus);
    for (auto& m : g.mig_devices) {
      m.uuid = bounded(m.uuid);
      m.profile = bounded(m.profile);
    }
  }
  s.host.cpu_model = bounded(s.host.cpu_model);
  return {};
}

struct Section {
  std::string text;
  int rc = -1;
};

// Sections "<marker> begin NAME" … "<marker> end RC", each name at most once and in the script's
// order: output that repeats or reorders them (a forged section) is refused as a whole.
constexpr std::string_view kOrder[] = {"arch",   "cpus",        "meminfo", "stat",
                                       "nvidia", "nvidia-apps", "rocm",    "lspci"};
Result<std::map<std::string, Section>> sectionsOf(std::string_view out, std::string_view marker) {
  std::map<std::string, Section> sections;
  size_t next_allowed = 0;  // index into kOrder of the earliest name that may begin now
  std::string current;
  std::string body;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    std::string_view line = out.substr(pos, nl == std::string_view::npos ? out.npos : nl - pos);
    pos = nl == std::string_view::npos ? out.size() : nl + 1;
    if (line.size() > marker.size() && line.substr(0, marker.size()) == marker &&
        line[marker.size()] == ' ') {
      std::string_view rest = line.substr(marker.size() + 1);
      if (rest.rfind("begin ", 0) == 0) {
        if (!current.empty()) return invalidArgument("probe output: a section opened twice");
        const std::string_view name = rest.substr(6);
        size_t at = next_allowed;
        while (at < std::size(kOrder) && kOrder[at] != name) ++at;
        if (at == std::size(kOrder))
          return invalidArgument("probe output: an unexpected or repeated section");
        next_allowed = at + 1;
        current = std::string(name);
        body.clear();
      } else if (rest.rfind("end ", 0) == 0 && !current.empty()) {
        // The line break printed before the end marker is not the tool's.
        if (!body.empty() && body.back() == '\n') body.pop_back();
        Section s{body, -1};
        try {
          s.rc = std::stoi(std::string(rest.substr(4)));
        } catch (...) {
          s.rc = -1;
        }
        sections[current] = std::move(s);
        current.clear();
      } else {
        return invalidArgument("probe output: a malformed marker line");
      }
      continue;
    }
    if (!current.empty()) {
      body.append(line);
      body += '\n';
    }
  }
  return sections;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

// The fields between the quotes of an `lspci -mm` line, and the "[xxxx]" id at the end of each.
std::vector<std::string> quotedFields(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    size_t open = line.find('"', i);
    if (open == std::string_view::npos) break;
    size_t close = line.find('"', open + 1);
    if (close == std::string_view::npos) break;
    out.emplace_back(line.substr(open + 1, close - open - 1));
    i = close + 1;
  }
  return out;
}

std::string bracketId(std::string_view field) {
  if (field.size() < 6 || field.back() != ']') return {};
  size_t open = field.rfind('[');
  if (open == std::string_view::npos) return {};
  return std::string(field.substr(open + 1, field.size() - open - 2));
}

std::string withoutId(std::string_view field) {
  size_t open = field.rfind(" [");
  return std::string(open == std::string_view::npos ? field : field.substr(0, open));
}

}  // namespace

Result<std::string> probeScript(std::string_view nonce) {
  if (!isNonce(nonce)) return invalidArgument("probe nonce must be 16 hex digits");
  std::string m = "@@hwl-" + std::string(nonce);
  std::string q;
  for (auto f : probes::kQueryGpuFields) q += (q.empty() ? "" : ",") + std::string(f);
  std::string apps;
  for (auto f : probes::kQueryComputeAppsFields) apps += (apps.empty() ? "" : ",") + std::string(f);
  std::string rocm;
  for (auto a : probes::kRocmSmiArgs) rocm += " " + std::string(a);
  // Only constants and the checked nonce go into the script; the remote login shell gets it as
  // one single-quoted argument of `sh -c`, whatever shell that user has.
  std::string s;
  s += "M=" + m + "\n";
  s += "b() { printf '%s begin %s\\n' \"$M\" \"$1\"; }\n";
  s += "e() { printf '\\n%s end %s\\n' \"$M\" \"$1\"; }\n";
  s += "export LC_ALL=C\n";
  s += "b arch; uname -m 2>&1; e $?\n";
  s += "b cpus; nproc 2>&1; e $?\n";
  s += "b meminfo; cat /proc/meminfo 2>&1; e $?\n";
  s += "b stat; head -n 1 /proc/stat 2>&1; e $?\n";
  s += "r=1\n";
  s += "if command -v nvidia-smi >/dev/null 2>&1; then b nvidia; nvidia-smi --query-gpu=" + q +
       " --format=csv,nounits 2>&1; r=$?; e $r\n";
  s += "  if [ $r -eq 0 ]; then b nvidia-apps; nvidia-smi --query-compute-apps=" + apps +
       " --format=csv,nounits 2>&1; e $?; fi\nfi\n";
  s += "if [ $r -ne 0 ] && command -v rocm-smi >/dev/null 2>&1; then b rocm; rocm-smi" + rocm +
       " 2>/dev/null; r=$?; e $r; fi\n";
  s += "if [ $r -ne 0 ]; then b lspci; lspci -mm -nn 2>&1; e $?; fi\n";
  auto quoted = ssh::shellQuote(s);
  if (!quoted) return quoted.error();
  return "sh -c " + *quoted;
}

std::vector<probes::GpuSample> parseLspciGpus(std::string_view text) {
  std::vector<probes::GpuSample> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    std::string slot(line.substr(0, sp));
    auto f = quotedFields(line.substr(sp));
    if (f.size() < 3) continue;
    const std::string cls = bracketId(f[0]);
    if (cls != "0300" && cls != "0302" && cls != "0380") continue;
    const std::string vendor_id = bracketId(f[1]);
    probes::GpuSample g;
    if (vendor_id == "10de")
      g.vendor = "nvidia";
    else if (vendor_id == "1002")
      g.vendor = "amd";
    else if (vendor_id == "8086")
      g.vendor = "intel";
    else
      continue;  // a BMC's display (ASPEED, Matrox): not a GPU for work
    g.index = static_cast<uint32_t>(out.size());
    g.pci_bus_id = slot;
    g.uuid = "PCI-" + slot;
    g.name = withoutId(f[1]) + " " + withoutId(f[2]);
    out.push_back(std::move(g));
  }
  return out;
}

Result<Probed> parseProbeOutput(std::string_view output, std::string_view nonce,
                                const std::optional<probes::CpuTimes>& previous_cpu,
                                int64_t time_ms) {
  if (!isNonce(nonce)) return invalidArgument("probe nonce must be 16 hex digits");
  auto parsed = sectionsOf(output, "@@hwl-" + std::string(nonce));
  if (!parsed) return parsed.error();
  const auto& sec = *parsed;
  auto ok = [&](const char* name) -> const std::string* {
    auto it = sec.find(name);
    return it != sec.end() && it->second.rc == 0 ? &it->second.text : nullptr;
  };
  Probed p;
  p.sample.time_ms = time_ms;
  if (!ok("arch") && !ok("meminfo"))
    return unavailable("the host's probe printed nothing we know (is /bin/sh POSIX?)");
  if (auto* a = ok("arch")) p.arch = bounded(trimmed(*a), 64);
  if (auto* c = ok("cpus")) {
    try {
      auto n = std::stoul(trimmed(*c));
      if (n > 0 && n < 1u << 20) p.sample.host.cpu_cores = static_cast<uint32_t>(n);
    } catch (...) {
    }
  }
  if (auto* m = ok("meminfo")) {
    auto mi = probes::parseMeminfo(*m);
    p.sample.host.memory_total_bytes = mi.total_bytes;
    p.sample.host.memory_available_bytes = mi.available_bytes;
  }
  if (auto* s = ok("stat")) {
    if (auto t = probes::parseProcStat(*s)) {
      p.cpu = *t;
      if (previous_cpu) p.sample.host.cpu_util_pct = probes::cpuUtilizationPct(*previous_cpu, *t);
    }
  }
  if (auto* n = ok("nvidia")) {
    auto gpus = probes::parseQueryGpuCsv(*n);
    if (!gpus) return Error{gpus.error().code, "nvidia-smi: " + gpus.error().message};
    p.sample.gpus = std::move(*gpus);
    for (auto& g : p.sample.gpus)
      if (g.vendor.empty() || g.vendor == "unknown") g.vendor = "nvidia";
    if (auto* a = ok("nvidia-apps"); a && !trimmed(*a).empty())
      if (auto apps = probes::parseComputeAppsCsv(*a))
        probes::attachProcesses(p.sample.gpus, *apps);
    p.backend = "nvidia-smi";
  } else if (auto* r = ok("rocm")) {
    auto rep = probes::parseRocmSmiJson(*r);
    if (!rep) return Error{rep.error().code, "rocm-smi: " + rep.error().message};
    p.sample.gpus = std::move(rep->gpus);
    if (p.sample.gpus.size() == 1) p.sample.gpus[0].processes = std::move(rep->processes);
    p.backend = "rocm-smi";
  } else if (auto* l = ok("lspci")) {
    p.sample.gpus = parseLspciGpus(*l);
    p.backend = "lspci";
  } else {
    p.backend = "none";
  }
  if (auto st = boundSample(p.sample); !st) return st.error();
  return p;
}

Result<Probed> probeHost(ssh::SshSession& session, std::chrono::milliseconds timeout,
                         const std::optional<probes::CpuTimes>& previous_cpu) {
  const std::string nonce = newNonce();
  if (nonce.empty()) return internal("no random bytes for the probe's nonce");
  auto script = probeScript(nonce);
  if (!script) return script.error();
  auto r = session.exec(*script, timeout, size_t{4} << 20);
  if (!r) return r.error();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return parseProbeOutput(r->out, nonce, previous_cpu, now);
}

bj::array inventoryOf(const probes::Sample& sample) {
  bj::array gpus;
  for (const auto& g : sample.gpus) {
    bj::object o{{"uuid", g.uuid}, {"name", g.name}, {"index", g.index}};
    if (g.memory_total_bytes) o["memory_total_bytes"] = *g.memory_total_bytes;
    if (!g.driver_version.empty()) o["driver_version"] = g.driver_version;
    gpus.push_back(std::move(o));
  }
  return gpus;
}

bj::object platformOf(const Probed& p) {
  bj::object o{{"arch", p.arch}, {"gpu_backend", p.backend}};
  if (p.sample.host.cpu_cores) o["cpu_cores"] = *p.sample.host.cpu_cores;
  if (p.sample.host.memory_total_bytes) o["memory_bytes"] = *p.sample.host.memory_total_bytes;
  return o;
}

}  // namespace hwl::agentless
