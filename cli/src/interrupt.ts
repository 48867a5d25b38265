/** Ctrl-C as an AbortSignal, for commands that follow something (logs -f, watch, an attached run). */
export function interruptSignal(onInterrupt: () => void = () => {}): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const listener = (): void => {
    onInterrupt();
    controller.abort();
  };
  process.once('SIGINT', listener);
  return { signal: controller.signal, dispose: () => void process.off('SIGINT', listener) };
}
