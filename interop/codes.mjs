// Connect code names ("permission_denied") to and from connect-es's Code enum.
// (connect-es has such helpers too, but marks them internal.)
import { Code } from "@connectrpc/connect";

const byName = new Map();
for (const [key, value] of Object.entries(Code)) {
  if (typeof value === "number") {
    byName.set(key.replace(/[A-Z]/g, (c, i) => (i > 0 ? "_" : "") + c.toLowerCase()), value);
  }
}

/** The snake_case name of a Code, e.g. "permission_denied"; the number as text for unknown codes. */
export function codeName(code) {
  for (const [name, value] of byName) {
    if (value === code) {
      return name;
    }
  }
  return String(code);
}

/** The Code with this snake_case name, or undefined. */
export function codeFromName(name) {
  return byName.get(name);
}
