// Header fields as Sluice passes them around: lower-case names, one string or a list.
export type HeaderMap = Record<string, string | string[]>;
