// What the console knows of each resource kind: its table columns, what search looks
// in, its form fields and a starting manifest. Everything else is kept as the server
// sent it, so an edit in the form never drops a field the form does not show.

const name = { path: "metadata.name", label: "Name", required: true };
const ref = { path: "metadata.ref", label: "Reference", hint: "optional; generated when empty", fixed: true };
const username = { path: "spec.credentials.username", label: "Username", required: true };
const secret = {
  path: "spec.credentials.secret", label: "Secret", type: "password", secret: true, required: true,
  hint: "write-only; left empty on edit, the stored one is kept",
};
const modified = { label: "Modified", get: (r) => (r.metadata.modifiedOn || "").slice(0, 19).replace("T", " ") };

export const KINDS = {
  domains: {
    kind: "Domain", title: "Domains", singular: "domain",
    search: ["metadata.name", "metadata.ref", "spec.context.domainUri"],
    columns: [
      { label: "Name", get: (r) => r.metadata.name },
      { label: "Domain URI", get: (r) => r.spec.context.domainUri },
      { label: "Egress", get: (r) => (r.spec.context.egressPolicies || (r.spec.context.egressPolicy ? [r.spec.context.egressPolicy] : [])).map((p) => `${p.rule} → ${p.numberRef}`).join(", ") },
      { label: "Reference", get: (r) => r.metadata.ref },
      modified,
    ],
    fields: [
      name, ref,
      { path: "spec.context.domainUri", label: "Domain URI", required: true, hint: "e.g. sip.local" },
      { path: "spec.context.accessControlList.allow", label: "ACL allow", type: "list", hint: "networks, comma separated (192.168.0.0/16)" },
      { path: "spec.context.accessControlList.deny", label: "ACL deny", type: "list", hint: "networks, comma separated (0.0.0.0/0)" },
    ],
    template: () => ({ apiVersion: "v1beta1", kind: "Domain", metadata: { name: "" }, spec: { context: { domainUri: "" } } }),
  },
  agents: {
    kind: "Agent", title: "Agents", singular: "agent",
    search: ["metadata.name", "metadata.ref", "spec.credentials.username"],
    columns: [
      { label: "Name", get: (r) => r.metadata.name },
      { label: "Username", get: (r) => r.spec.credentials.username },
      { label: "Domains", get: (r) => r.spec.domains.join(", ") },
      { label: "Privacy", get: (r) => r.spec.privacy },
      { label: "Reference", get: (r) => r.metadata.ref },
      modified,
    ],
    fields: [
      name, ref, username, secret,
      { path: "spec.domains", label: "Domains", type: "list", required: true, hint: "domain URIs, comma separated" },
      { path: "spec.privacy", label: "Privacy", type: "select", options: ["None", "Private"] },
      { path: "spec.ex_maxContact", label: "Max contacts", type: "number", min: 1 },
    ],
    template: () => ({ apiVersion: "v1beta1", kind: "Agent", metadata: { name: "" }, spec: { credentials: { username: "", secret: "" }, domains: [], privacy: "None" } }),
  },
  peers: {
    kind: "Peer", title: "Peers", singular: "peer",
    search: ["metadata.name", "metadata.ref", "spec.credentials.username", "spec.device"],
    columns: [
      { label: "Name", get: (r) => r.metadata.name },
      { label: "Username", get: (r) => r.spec.credentials.username },
      { label: "Device", get: (r) => r.spec.device || "" },
      { label: "Contact", get: (r) => r.spec.contactAddr || "" },
      { label: "Balancing", get: (r) => r.spec.loadBalancing?.algorithm || "" },
      { label: "Reference", get: (r) => r.metadata.ref },
    ],
    fields: [
      name, ref, username, secret,
      { path: "spec.device", label: "Device", hint: "the AOR's host; defaults to the From host" },
      { path: "spec.contactAddr", label: "Contact address", hint: "host:port" },
      { path: "spec.loadBalancing.algorithm", label: "Load balancing", type: "select", options: ["round-robin", "least-sessions"] },
      { path: "spec.ex_maxContact", label: "Max contacts", type: "number", min: 1 },
    ],
    template: () => ({ apiVersion: "v1beta1", kind: "Peer", metadata: { name: "" }, spec: { credentials: { username: "", secret: "" } } }),
  },
  gateways: {
    kind: "Gateway", title: "Gateways", singular: "gateway",
    search: ["metadata.name", "metadata.ref", "spec.host"],
    columns: [
      { label: "Name", get: (r) => r.metadata.name },
      { label: "Host", get: (r) => (r.spec.port ? `${r.spec.host}:${r.spec.port}` : r.spec.host) },
      { label: "Transport", get: (r) => r.spec.transport },
      { label: "Registers", get: (r) => (r.spec.sendRegister ? "yes" : "no") },
      { label: "Reference", get: (r) => r.metadata.ref },
    ],
    fields: [
      name, ref,
      { path: "spec.host", label: "Host", required: true },
      { path: "spec.port", label: "Port", type: "number", min: 1, max: 65535 },
      { path: "spec.transport", label: "Transport", type: "select", options: ["udp", "tcp", "tls", "ws", "wss"] },
      { path: "spec.sendRegister", label: "Register with it", type: "checkbox" },
      { path: "spec.expires", label: "Expires (s)", type: "number", min: 1 },
      { path: "spec.credentials.username", label: "Username" },
      { ...secret, required: false },
    ],
    template: () => ({ apiVersion: "v1beta1", kind: "Gateway", metadata: { name: "" }, spec: { host: "", transport: "udp", sendRegister: false } }),
  },
  numbers: {
    kind: "Number", title: "Numbers", singular: "number",
    search: ["metadata.name", "metadata.ref", "spec.location.telUrl", "spec.location.aorLink"],
    columns: [
      { label: "Tel URL", get: (r) => r.spec.location.telUrl },
      { label: "AOR link", get: (r) => r.spec.location.aorLink },
      { label: "Gateway", get: (r) => r.metadata.gwRef },
      { label: "City", get: (r) => r.metadata.geoInfo?.city || "" },
      { label: "Reference", get: (r) => r.metadata.ref },
    ],
    fields: [
      { ...name, required: false }, ref,
      { path: "metadata.gwRef", label: "Gateway reference", required: true },
      { path: "spec.location.telUrl", label: "Tel URL", required: true, hint: "tel:+17066041487" },
      { path: "spec.location.aorLink", label: "AOR link", required: true, hint: "sip:1001@sip.local" },
      { path: "metadata.geoInfo.city", label: "City" },
      { path: "metadata.geoInfo.country", label: "Country" },
      { path: "metadata.geoInfo.countryISOCode", label: "Country ISO code" },
    ],
    template: () => ({ apiVersion: "v1beta1", kind: "Number", metadata: { gwRef: "" }, spec: { location: { telUrl: "", aorLink: "" } } }),
  },
  users: {
    kind: "User", title: "Users", singular: "user",
    search: ["metadata.name", "metadata.ref", "spec.credentials.username"],
    columns: [
      { label: "Name", get: (r) => r.metadata.name },
      { label: "Username", get: (r) => r.spec.credentials.username },
      { label: "Reference", get: (r) => r.metadata.ref },
      modified,
    ],
    fields: [name, ref, username, secret],
    template: () => ({ apiVersion: "v1beta1", kind: "User", metadata: { name: "" }, spec: { credentials: { username: "", secret: "" } } }),
  },
};
