/** A file mode as people and `chmod` write it, four octal digits ("0600", "1731"): in messages and --json reports. */
export const formatMode = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');
