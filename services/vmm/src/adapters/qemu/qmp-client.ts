import { createConnection, type Socket } from 'node:net';

/**
 * Minimal QMP client over QEMU's Unix socket: one command at a time, replies matched in order,
 * asynchronous events ({"event": ...}) skipped.
 */
export class QmpClient {
  private buffer = '';
  private waiting: ((message: Record<string, unknown>) => void)[] = [];
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail(new Error('QMP socket closed')));
    socket.on('error', (error) => this.fail(error));
  }

  static async connect(path: string, timeoutMs = 3000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`QMP socket ${path} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to QMP socket ${path}: ${error.message}`, { cause: error }));
      });
    });
    const client = new QmpClient(socket);
    await client.next(); // greeting {"QMP": {...}}
    await client.execute('qmp_capabilities');
    return client;
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.next();
    this.socket.write(
      `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`,
    );
    const message = await reply;
    if ('error' in message) {
      const error = message.error as { class?: string; desc?: string };
      throw new Error(`QMP ${command} failed: ${error.class ?? 'Error'}: ${error.desc ?? 'no description'}`);
    }
    return message.return;
  }

  close(): void {
    this.socket.destroy();
  }

  private next(): Promise<Record<string, unknown>> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      this.socket.once('close', () => reject(this.closedError ?? new Error('QMP socket closed')));
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (!line) continue;
      const message = JSON.parse(line) as Record<string, unknown>;
      if ('event' in message) continue;
      this.waiting.shift()?.(message);
    }
  }

  private fail(error: Error): void {
    this.closedError ??= error;
  }
}
