// Entity-tag comparison (RFC 9110 §8.8.3.2). A field sent more than once is read as its
// values joined by ", ", as a list-valued header would be.
type Tag = string | readonly string[];

/** Weak comparison: the opaque tags are equal, whether or not either is marked W/. */
export function weakMatch(a: Tag, b: Tag): boolean {
  return opaque(text(a)) === opaque(text(b));
}

/** Strong comparison: neither tag is weak and they are equal. */
export function strongMatch(a: Tag, b: Tag): boolean {
  const x = text(a);
  const y = text(b);
  return !x.startsWith('W/') && !y.startsWith('W/') && x === y;
}

function text(tag: Tag): string {
  return (typeof tag === 'string' ? tag : tag.join(', ')).trim();
}

function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
