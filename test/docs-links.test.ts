/**
 * The documentation stands on its own in a clone: every relative link in README.md, docs/*.md and
 * the examples' READMEs names a file of the repository (and, with a #fragment into a Markdown file,
 * one of its headings), and nothing points at the design notes outside it (../shared).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

function markdownPages(): string[] {
  const inDir = (dir: string): string[] =>
    existsSync(join(repoRoot, dir)) ? readdirSync(join(repoRoot, dir)).filter((f) => f.endsWith('.md')).map((f) => join(dir, f)) : [];
  const exampleReadmes = readdirSync(join(repoRoot, 'examples'))
    .map((name) => join('examples', name, 'README.md'))
    .filter((path) => existsSync(join(repoRoot, path)));
  return ['README.md', ...inDir('docs'), ...exampleReadmes];
}

/** The text outside fenced code blocks and inline code spans: links there are not links. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Inline links and images `[text](target "title")`, and reference definitions `[id]: target`. */
function linkTargets(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const references = [...text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)].map((m) => m[1]!);
  return [...inline, ...references];
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const match of withoutFences.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = match[1]!
      .toLowerCase()
      .replace(/`/g, '')
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** What is wrong with one relative link of page (a repo-relative path), or undefined when it is fine. */
function problemWith(page: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // https:, mailto:, ...
  const [pathPart = '', fragment] = target.split('#', 2);
  const path = decodeURIComponent(pathPart);
  const absolute = path === '' ? join(repoRoot, page) : resolve(repoRoot, dirname(page), path);
  const inRepo = relative(repoRoot, absolute);
  if (inRepo.startsWith('..') || inRepo.startsWith(sep)) return `${target} points outside the repository`;
  if (!existsSync(absolute)) return `${target}: no such file in the repository (${inRepo})`;
  if (fragment && absolute.endsWith('.md') && !headingAnchors(readFileSync(absolute, 'utf8')).has(fragment))
    return `${target}: ${inRepo} has no heading #${fragment}`;
  return undefined;
}

describe('documentation links', () => {
  const pages = markdownPages();

  it('finds the pages it checks', () => {
    assert.ok(pages.includes('README.md') && pages.includes(join('docs', 'architecture.md')), pages.join(', '));
  });

  it('reads links as Markdown does: not in code, with titles and fragments', () => {
    const sample = 'See [a](docs/a.md#x "t") and ![i](img.png).\n`[no](code.md)`\n```\n[no](fence.md)\n```\n[ref]: ./b.md\n';
    assert.deepEqual(linkTargets(sample), ['docs/a.md#x', 'img.png', './b.md']);
    assert.deepEqual([...headingAnchors('# Build contexts\n## 2. An HTTP(S) URL\n## Build contexts\n')], ['build-contexts', '2-an-https-url', 'build-contexts-1']);
  });

  for (const page of pages) {
    it(`${page}: every relative link resolves inside the repository, and nothing cites ../shared`, () => {
      const markdown = readFileSync(join(repoRoot, page), 'utf8');
      const problems = linkTargets(markdown)
        .map((target) => problemWith(page, target))
        .filter((problem): problem is string => problem !== undefined);
      markdown.split('\n').forEach((line, index) => {
        if (line.includes('../shared') || /(^|[\s`(])shared\/(DESIGN|VM-LAB|STYLE|firecracker)/.test(line))
          problems.push(`line ${index + 1} cites the design notes outside the repository: ${line.trim()}`);
      });
      assert.deepEqual(problems, [], `${page}:\n${problems.join('\n')}`);
    });
  }
});
