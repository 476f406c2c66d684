/**
 * Write docs/cli.md from the `--help` texts (src/cli/help.ts), so the reference can't drift
 * from the program: test/unit/cli-doc.test.ts fails when the committed file is stale.
 *   node --import tsx scripts/make-cli-doc.ts
 */
import { writeFileSync } from 'node:fs';
import { renderCliDoc } from '../src/cli/help.js';

writeFileSync(new URL('../docs/cli.md', import.meta.url), renderCliDoc());
