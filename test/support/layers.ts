import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import ts from 'typescript';

// The layer rules as code: which src/ folder (or top-level file) may import which, checked on the syntax tree
// (static imports, `export … from`, `import()` and `import('…').Type`), and which names a module may pass on.
// Parsed with TypeScript itself rather than matched with regexes: a multi-line import, double quotes or an
// `import()` in a type would slip past a pattern, and a rule that can be slipped past is not a rule.

/** Which src/ folders (`feed`) or top-level files (`app.ts`) each layer may import from. A folder lists itself. */
export type LayerTable = Readonly<Record<string, readonly string[]>>;

interface Binding {
  spec: string;
  /** The name in the module it comes from: `default`, a name, or `*` for a namespace. */
  imported: string;
}

/** What one file imports and exports, as written. */
export interface ModuleFacts {
  /** Every module specifier: static imports, `export … from`, `import()`, `import('…')` types. */
  specs: { spec: string; line: number }[];
  /** `import()` whose argument is not a string literal: it cannot be checked, so it is not allowed. */
  computedImports: number[];
  /** Names declared here and exported. */
  local: Set<string>;
  /** Exported name → where it comes from (`export { a } from`, or an imported binding exported again or aliased). */
  reexports: Map<string, Binding>;
  /** `export * from '…'` */
  stars: string[];
}

export function parseModule(text: string, fileName = 'module.ts'): ModuleFacts {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, fileName.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const facts: ModuleFacts = { specs: [], computedImports: [], local: new Set(), reexports: new Map(), stars: [] };
  const lineOf = (n: ts.Node): number => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const imports = new Map<string, Binding>();
  const exported = (n: ts.Node): boolean => ts.canHaveModifiers(n) && (ts.getModifiers(n) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);

  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier)) {
      const spec = st.moduleSpecifier.text;
      const c = st.importClause;
      if (c?.name) imports.set(c.name.text, { spec, imported: 'default' });
      if (c?.namedBindings && ts.isNamespaceImport(c.namedBindings)) imports.set(c.namedBindings.name.text, { spec, imported: '*' });
      if (c?.namedBindings && ts.isNamedImports(c.namedBindings)) {
        for (const el of c.namedBindings.elements) imports.set(el.name.text, { spec, imported: (el.propertyName ?? el.name).text });
      }
    } else if (ts.isImportEqualsDeclaration(st) && ts.isExternalModuleReference(st.moduleReference) && ts.isStringLiteral(st.moduleReference.expression)) {
      imports.set(st.name.text, { spec: st.moduleReference.expression.text, imported: '*' });
    }
  }
  // an alias of an imported name (`export type A = B`, `export const a = b`) passes it on as surely as a re-export
  const aliasOf = (e: ts.Node | undefined): Binding | undefined => {
    if (!e) return undefined;
    if (ts.isTypeReferenceNode(e)) e = e.typeName;
    if (ts.isIdentifier(e)) return imports.get(e.text);
    const [left, right] = ts.isQualifiedName(e) ? [e.left, e.right] : ts.isPropertyAccessExpression(e) ? [e.expression, e.name] : [];
    if (left && right && ts.isIdentifier(left) && imports.get(left.text)?.imported === '*') return { spec: imports.get(left.text)!.spec, imported: right.text };
    return undefined;
  };
  const exportName = (name: string, from: ts.Node | undefined): void => {
    const b = aliasOf(from);
    if (b) facts.reexports.set(name, b);
    else facts.local.add(name);
  };

  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st)) {
      const spec = st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier) ? st.moduleSpecifier.text : undefined;
      if (!st.exportClause) {
        if (spec) facts.stars.push(spec);
      } else if (ts.isNamespaceExport(st.exportClause)) {
        if (spec) facts.reexports.set(st.exportClause.name.text, { spec, imported: '*' });
      } else {
        for (const el of st.exportClause.elements) {
          const name = el.name.text;
          const from = (el.propertyName ?? el.name).text;
          if (spec) facts.reexports.set(name, { spec, imported: from });
          else exportName(name, el.propertyName ?? el.name);
        }
      }
    } else if (ts.isExportAssignment(st)) {
      exportName('default', st.expression);
    } else if (ts.isTypeAliasDeclaration(st) && exported(st)) {
      exportName(st.name.text, st.type);
    } else if (ts.isVariableStatement(st) && exported(st)) {
      for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) exportName(d.name.text, d.initializer);
    } else if (ts.isImportEqualsDeclaration(st) && exported(st)) {
      const b = imports.get(st.name.text);
      if (b) facts.reexports.set(st.name.text, b);
      else exportName(st.name.text, st.moduleReference);
    } else if (exported(st)) {
      const name = (st as { name?: ts.Node }).name;
      const isDefault = (ts.getModifiers(st as ts.HasModifiers) ?? []).some((m) => m.kind === ts.SyntaxKind.DefaultKeyword);
      facts.local.add(isDefault ? 'default' : name && ts.isIdentifier(name) ? name.text : '?');
    }
  }

  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      facts.specs.push({ spec: n.moduleSpecifier.text, line: lineOf(n) });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      facts.specs.push({ spec: n.moduleReference.expression.text, line: lineOf(n) });
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = n.arguments[0];
      if (arg && ts.isStringLiteralLike(arg)) facts.specs.push({ spec: arg.text, line: lineOf(n) });
      else facts.computedImports.push(lineOf(n));
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      facts.specs.push({ spec: n.argument.literal.text, line: lineOf(n) });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return facts;
}

/** The .ts and .tsx files under a folder (the dashboard's pages are .tsx). */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && (e.name.endsWith('.ts') || e.name.endsWith('.tsx')) && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * Checks every .ts file under `srcDir` against the table; returns one line per violation (empty: all kept).
 * - every file belongs to a row (a new folder needs its rule before it needs code);
 * - a relative import of any kind reaches only a layer its row names; an `import()` must name a literal path;
 * - no module exports a name that comes (through any chain of re-exports, `export *` included) from a layer that
 *   some layer allowed to import this module may not import: a type re-exported through feed/ is still cache/'s.
 */
export function checkLayers(srcDir: string, table: LayerTable): string[] {
  const violations: string[] = [];
  const rel = (f: string): string => relative(srcDir, f).split(sep).join('/');
  const layerOf = (f: string): string => {
    const r = rel(f);
    return r.startsWith('../') ? '(outside src)' : r.includes('/') ? r.split('/')[0]! : r;
  };
  const mods = new Map<string, ModuleFacts>();
  for (const f of sourceFiles(srcDir)) mods.set(f, parseModule(readFileSync(f, 'utf8'), f));
  const resolveSpec = (from: string, spec: string): string | undefined => {
    if (!spec.startsWith('.')) return undefined; // a package or node: builtin
    const target = join(dirname(from), spec);
    if (/\.[cm]?js$/.test(target)) {
      const ts = target.replace(/\.([cm]?)js$/, '.$1ts');
      return mods.has(ts) || !mods.has(`${ts}x`) ? ts : `${ts}x`;
    }
    if (mods.has(`${target}.ts`)) return `${target}.ts`;
    if (mods.has(join(target, 'index.ts'))) return join(target, 'index.ts');
    return target;
  };
  const allowed = (layer: string, target: string): boolean => layer === target || (table[layer] ?? []).includes(target);

  for (const [file, m] of mods) {
    const layer = layerOf(file);
    if (!(layer in table)) {
      violations.push(`${rel(file)}: ${layer} has no row in the layer table`);
      continue;
    }
    for (const line of m.computedImports) violations.push(`${rel(file)}:${line}: import() of a computed path cannot be checked`);
    for (const { spec, line } of m.specs) {
      const target = resolveSpec(file, spec);
      if (target && !allowed(layer, layerOf(target))) violations.push(`${rel(file)}:${line} -> ${rel(target)}`);
    }
  }

  // the layers each exported name comes from: its own module's, or (followed) the module it is re-exported from
  const origins = (file: string, name: string, seen: Set<string>): Set<string> => {
    const m = mods.get(file);
    const key = `${file}#${name}`;
    if (!m || seen.has(key)) return new Set([layerOf(file)]);
    seen.add(key);
    if (name === '*') {
      const all = new Set([layerOf(file)]);
      for (const n of exportedNames(file, new Set())) for (const l of origins(file, n, seen)) all.add(l);
      return all;
    }
    if (m.local.has(name)) return new Set([layerOf(file)]);
    const b = m.reexports.get(name);
    if (b) {
      const target = resolveSpec(file, b.spec);
      return target ? origins(target, b.imported, seen) : new Set([layerOf(file)]);
    }
    for (const s of m.stars) {
      const target = resolveSpec(file, s);
      if (target && exportedNames(target, new Set()).has(name)) return origins(target, name, seen);
    }
    return new Set([layerOf(file)]);
  };
  const exportedNames = (file: string, seen: Set<string>): Set<string> => {
    const m = mods.get(file);
    if (!m || seen.has(file)) return new Set();
    seen.add(file);
    const names = new Set([...m.local, ...m.reexports.keys()]);
    for (const s of m.stars) {
      const target = resolveSpec(file, s);
      if (target) for (const n of exportedNames(target, seen)) if (n !== 'default') names.add(n);
    }
    return names;
  };
  // a module passes on only what every layer allowed to import it may import itself
  for (const file of mods.keys()) {
    const layer = layerOf(file);
    if (!(layer in table)) continue;
    const importers = Object.keys(table).filter((l) => l !== layer && allowed(l, layer));
    for (const name of exportedNames(file, new Set())) {
      for (const origin of origins(file, name, new Set())) {
        if (origin === layer) continue;
        const barred = importers.filter((l) => !allowed(l, origin));
        if (barred.length > 0) violations.push(`${rel(file)} exports ${name} from ${origin}, which ${barred.join(', ')} may not import (through ${layer})`);
      }
    }
  }
  return violations;
}

/**
 * The "May import:" list of a README, as written: the backticked names that follow it (`feed/`, `errors.ts`),
 * folders without their slash, so it compares with a table row.
 */
export function readmeMayImport(text: string): string[] | undefined {
  const m = /May import:((?:[\s,]*`[^`]+`)+)/.exec(text);
  if (!m) return undefined;
  return [...m[1]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]!.replace(/\/$/, '')).sort();
}

/** src/README.md: one `## \`file.ts\`` section per top-level file, each with its own "May import:". */
export function readmeSections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(/^## /m).slice(1)) {
    const name = /^`([^`]+)`/.exec(part)?.[1];
    if (name) out.set(name, part);
  }
  return out;
}
