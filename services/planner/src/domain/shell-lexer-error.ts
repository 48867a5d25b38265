/** A word that BuildKit's lexer would reject: unmatched quote, bad ${} syntax, `${v:?}` on an unset v. */
export class ShellExpansionError extends Error {
  override name = 'ShellExpansionError';
}
