// Checks Kubernetes manifests against the schemas of Kubernetes' OpenAPI
// definitions, as the kubernetes-models package ships them, twice:
//   - its JSON-schema validators: types, required fields, enums, formats;
//   - its TypeScript types, through tsc: what they add is that a field the
//     API does not know is an error (as `kubectl --validate=strict` says),
//     which the validators let through.
// Usage: node validate.mjs FILE...   (multi-document YAML)
// Prints one line per error and "kube-validate: N documents, N invalid";
// exits 1 when a document is invalid or a file does not parse.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const docs = [];
let bad = 0;

for (const file of process.argv.slice(2)) {
  for (const d of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (d.errors.length) {
      console.log(`${file}: ${d.errors[0].message}`);
      bad++;
      continue;
    }
    const obj = d.toJS();
    if (obj !== null) docs.push({ file, obj });
  }
}

// "apps/v1" + "Deployment" -> kubernetes-models/apps/v1/Deployment
function modulePath(o) {
  if (typeof o.apiVersion !== "string" || typeof o.kind !== "string")
    return null;
  return `kubernetes-models/${o.apiVersion}/${o.kind}`;
}

const ts = [], tsDocs = [];
for (const [i, { file, obj }] of docs.entries()) {
  const where = `${file}: ${obj?.kind ?? "?"} ${obj?.metadata?.name ?? "?"}`;
  const path = modulePath(obj ?? {});
  let mod;
  try {
    mod = path && (await import(path));
  } catch {
    mod = null;
  }
  const cls = mod && mod[obj.kind];
  if (!cls) {
    console.log(`${where}: no schema for ${obj?.apiVersion} ${obj?.kind}`);
    bad++;
    continue;
  }
  try {
    new cls(obj).validate();
  } catch (e) {
    console.log(`${where}: ${e.message}`);
    bad++;
  }
  tsDocs.push(i);
  ts.push(`import type { I${obj.kind} as T${i} } from "${path}";`);
  ts.push(`export const d${i}: T${i} = ${JSON.stringify(obj)};`);
}

// Unknown fields: tsc's excess property check on each document.
if (ts.length) {
  const dir = mkdtempSync(join(here, "check-"));
  writeFileSync(join(dir, "docs.ts"), ts.join("\n") + "\n");
  try {
    execFileSync(
      join(here, "node_modules/.bin/tsc"),
      ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution",
       "nodenext", "--skipLibCheck", join(dir, "docs.ts")],
      { encoding: "utf8" });
  } catch (e) {
    const lines = String(e.stdout).split("\n").filter((l) => l.trim());
    for (const l of lines) {
      const m = /docs\.ts\((\d+),\d+\): (.*)/.exec(l);
      if (!m) continue;
      const i = tsDocs[Math.ceil(Number(m[1]) / 2) - 1];
      const { file, obj } = docs[i] ?? { file: "?", obj: {} };
      console.log(`${file}: ${obj.kind} ${obj.metadata?.name}: ${m[2]}`);
      bad++;
    }
    if (!lines.some((l) => l.includes("docs.ts("))) {
      console.log(`tsc failed: ${lines.join(" ")}`);
      bad++;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`kube-validate: ${docs.length} documents, ${bad} invalid`);
process.exit(bad || !docs.length ? 1 : 0);
