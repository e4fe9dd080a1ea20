/** The package's version, for `--version` and the `generatedBy` / `producerVersion` fields of exports. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The version in the package.json beside this module's folder (`ts/` or `dist/`, so the package root's);
 * `unknown` for a build that is not inside a package, so that such a build still runs.
 */
export function packageVersion(): string {
  try {
    const file = path.join(__dirname, '..', 'package.json');
    return String((JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}
