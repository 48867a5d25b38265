/**
 * `kindling <command> [args]`: each command lives in ./commands/<command>.ts and exports
 * `describe` (one line for the help) and `run(argv)` returning the process exit code.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

interface CliCommand {
  describe: string;
  run(argv: string[]): Promise<number>;
}

const commandsDir = fileURLToPath(new URL('./commands/', import.meta.url));

async function commandNames(): Promise<string[]> {
  const files = await readdir(commandsDir);
  return files.filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();
}

async function loadCommand(name: string): Promise<CliCommand> {
  return (await import(new URL(`./commands/${name}.ts`, import.meta.url).href)) as CliCommand;
}

async function printHelp(out: NodeJS.WritableStream): Promise<void> {
  const lines = ['usage: kindling <command> [options]', '', 'commands:'];
  for (const name of await commandNames()) lines.push(`  ${name.padEnd(14)} ${(await loadCommand(name)).describe}`);
  lines.push('', 'Run `kindling <command> --help` for the options of one command.');
  out.write(lines.join('\n') + '\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    // Asked for, the help is the output; a missing command is a usage error, reported on stderr.
    await printHelp(name === undefined ? process.stderr : process.stdout);
    return name === undefined ? 2 : 0;
  }
  if (!(await commandNames()).includes(name)) {
    process.stderr.write(`kindling: unknown command "${name}"; run "kindling --help" for the list\n`);
    return 2;
  }
  return (await loadCommand(name)).run(rest);
}

// A reader that stops early (`kindling plan | head`) is not an error: stop quietly, as cat does.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await main(process.argv.slice(2));
