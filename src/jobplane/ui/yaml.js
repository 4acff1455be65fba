// JSON -> YAML for display (the shapes Kubernetes objects have; strings quoted when needed).

const PLAIN = /^[A-Za-z_./][\w ./:@-]*$/;
const RESERVED = new Set(["true", "false", "null", "yes", "no", "on", "off", "~", ""]);

function scalar(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  const s = String(v);
  if (PLAIN.test(s) && !RESERVED.has(s.toLowerCase()) && !s.endsWith(" ") && !/: |\s#/.test(s)) return s;
  return JSON.stringify(s);
}

function isEmpty(v) { return Array.isArray(v) ? v.length === 0 : v && typeof v === "object" && !Object.keys(v).length; }

export function toYAML(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return value.map((item) => {
      if (item && typeof item === "object" && !isEmpty(item)) {
        const body = toYAML(item, indent + "  ");
        return `${indent}- ${body.slice(indent.length + 2)}`;
      }
      return `${indent}- ${isEmpty(item) ? (Array.isArray(item) ? "[]" : "{}") : scalar(item)}`;
    }).join("\n");
  }
  if (value && typeof value === "object") {
    if (!Object.keys(value).length) return "{}";
    return Object.entries(value).map(([k, v]) => {
      const key = `${indent}${scalar(k)}:`;
      if (v && typeof v === "object" && !isEmpty(v)) {
        return Array.isArray(v) ? `${key}\n${toYAML(v, indent)}` : `${key}\n${toYAML(v, indent + "  ")}`;
      }
      if (typeof v === "string" && v.includes("\n")) {
        return `${key} |\n${v.replace(/\n$/, "").split("\n").map((l) => indent + "  " + l).join("\n")}`;
      }
      return `${key} ${isEmpty(v) ? (Array.isArray(v) ? "[]" : "{}") : scalar(v)}`;
    }).join("\n");
  }
  return indent + scalar(value);
}
