/** An error the CLI prints as one line and exits 1 for (missing interface, missing privileges ...). */
export class DaemonError extends Error {
  override readonly name = 'DaemonError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}
