// OSV advisories for tests (issue #16), shaped like the OpenSSF malicious-packages repository's files.

/** A malicious-package entry shaped like the repository's osv/malicious/nuget/<id>/MAL-….json files. */
export function malEntry(id: string, name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    modified: '2024-10-24T01:01:57Z',
    published: '2024-06-25T13:23:17Z',
    schema_version: '1.5.0',
    id,
    summary: `Malicious code in ${name} (NuGet)`,
    details: '\n---\n_-= Per source details. Do not edit below this line.=-_\n',
    affected: [{ package: { ecosystem: 'NuGet', name, purl: `pkg:nuget/${name}` }, versions: ['1.0.0', '1.0.1'] }],
    references: [{ type: 'ARTICLE', url: 'https://www.reversinglabs.com/blog/example' }],
    credits: [{ name: 'ReversingLabs', type: 'FINDER', contact: ['https://www.reversinglabs.com'] }],
    database_specific: { 'malicious-packages-origins': [{ source: 'reversing-labs', sha256: 'fd51'.padEnd(64, '0'), id: 'RLMA-2024-02788' }] },
    ...over,
  };
}
