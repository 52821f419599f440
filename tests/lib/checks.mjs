// The check counter of the Node test suites (interop, hardening): ok/fail
// count and print, finish() prints `NAME: N passed, M failed` and returns
// the exit status.  Built-in modules only.

export class Checks {
  /**
   * opts: verbose (print passing checks too), maxDetails (failures whose
   * details are printed; later ones say they were suppressed), maxLines
   * (lines printed of one failure's details), maxListed (failures listed
   * by finish()).
   */
  constructor(name, {
    verbose = false, maxDetails = Infinity, maxLines = Infinity, maxListed = Infinity,
  } = {}) {
    this.name = name;
    this.passed = 0;
    this.failed = 0;
    this.failures = [];
    this.notes = [];
    this.printedDetails = 0;
    this.opts = { verbose, maxDetails, maxLines, maxListed };
  }

  ok(what) {
    this.passed++;
    if (this.opts.verbose) console.log(`  ok   ${what}`);
  }

  fail(what, details) {
    this.failed++;
    this.failures.push(what);
    console.log(`  FAIL ${what}`);
    if (details === undefined) return;
    if (this.printedDetails >= this.opts.maxDetails) {
      if (this.printedDetails++ === this.opts.maxDetails) console.log('       (further failure details suppressed)');
      return;
    }
    this.printedDetails++;
    const text = typeof details === 'string' ? details : JSON.stringify(details, null, 2);
    const lines = text.split('\n');
    console.log(lines.slice(0, this.opts.maxLines).map((l) => `       ${l}`).join('\n'));
    if (lines.length > this.opts.maxLines) console.log(`       ... (${lines.length - this.opts.maxLines} more lines)`);
  }

  /** Counts one check: passes when cond is truthy. */
  check(cond, what, details) {
    if (cond) this.ok(what); else this.fail(what, typeof details === 'function' ? details() : details);
    return !!cond;
  }

  /** Runs fn; an exception counts as one failed check named `what`. */
  async run(what, fn) {
    try {
      return await fn();
    } catch (e) {
      this.fail(what, e && e.stack ? e.stack : String(e));
      return undefined;
    }
  }

  /** Prints a remark that is neither a pass nor a failure. */
  note(text) {
    this.notes.push(text);
    console.log(`  note: ${text}`);
  }

  finish() {
    if (this.failures.length) {
      console.log(`${this.name}: failed checks:`);
      for (const f of this.failures.slice(0, this.opts.maxListed)) console.log(`  - ${f}`);
      if (this.failures.length > this.opts.maxListed) {
        console.log(`  ... and ${this.failures.length - this.opts.maxListed} more`);
      }
    }
    console.log(`${this.name}: ${this.passed} passed, ${this.failed} failed`);
    return this.failed === 0 && this.passed > 0 ? 0 : 1;
  }
}

/**
 * Runs the async main() and exits with the checks' status; an exception
 * counts as one failed check ('unexpected error').
 */
export function runMain(checks, main) {
  main().then(() => process.exit(checks.finish()), (e) => {
    checks.fail('unexpected error', e && e.stack ? e.stack : String(e));
    process.exit(checks.finish() || 1);
  });
}
