/** setTimeout caps delays at 2^31-1 ms (about 24.8 days) and fires at once beyond; this re-arms. */
const MAX_DELAY = 2_147_483_647;

export interface LongTimeout {
  cancel(): void;
}

/** Calls `fn` at the epoch-ms time `at` (at once if it is past). Unref'd: it never holds the process. */
export function setTimeoutAt(at: number, fn: () => void): LongTimeout {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const delay = at - Date.now();
    if (delay > MAX_DELAY) {
      timer = setTimeout(arm, MAX_DELAY);
    } else {
      timer = setTimeout(fn, Math.max(0, delay));
    }
    timer.unref();
  };
  arm();
  return {
    cancel() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** Waits for `promise` at most `ms`, whether it settles or fails; the timer is cleared either way. */
export async function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([
      promise.then(
        () => undefined,
        () => undefined,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
