// Enough YAML to show a resource for editing: the server reads YAML, so the console
// only has to write it. Strings that could be read as something else are quoted.

const PLAIN = /^[A-Za-z_/][\w .\/@:+-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const s = String(value);
  const plain = PLAIN.test(s) && !RESERVED.test(s) && !s.includes(": ") && !s.endsWith(":")
    && !s.includes(" #") && s.trim() === s;
  return plain ? s : JSON.stringify(s);
}

function isEmpty(value) {
  return typeof value === "object" && value !== null && Object.keys(value).length === 0;
}

function lines(value, indent) {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      if (typeof item === "object" && item !== null && !isEmpty(item)) {
        const inner = lines(item, indent + 2);
        return [`${pad}- ${inner[0].trimStart()}`, ...inner.slice(1)];
      }
      return [`${pad}- ${isEmpty(item) ? (Array.isArray(item) ? "[]" : "{}") : scalar(item)}`];
    });
  }
  return Object.entries(value).flatMap(([key, item]) => {
    const k = scalar(key);
    if (typeof item === "object" && item !== null) {
      if (isEmpty(item)) return [`${pad}${k}: ${Array.isArray(item) ? "[]" : "{}"}`];
      return [`${pad}${k}:`, ...lines(item, Array.isArray(item) ? indent : indent + 2)];
    }
    return [`${pad}${k}: ${scalar(item)}`];
  });
}

export function dump(value) {
  if (typeof value !== "object" || value === null) return scalar(value) + "\n";
  return lines(value, 0).join("\n") + "\n";
}
