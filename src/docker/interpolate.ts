import { ValidationError } from '../errors.js';

/**
 * Compose's variable interpolation (docker-compose 1.29 TemplateWithDefaults, the same grammar as the
 * Compose Specification): `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
 * `${VAR?message}`, `$$` for a literal `$`. An unset `${VAR}` becomes "" (compose warns; so do we).
 */
export interface InterpolationContext {
  /** What compose interpolates from: DIR/.env overlaid by the process environment. */
  env: Readonly<Record<string, string>>;
  /** Names of unset variables that defaulted to "" (compose prints a warning for each). */
  unset: Set<string>;
}

/** Thrown for `${VAR:?message}` / `${VAR?message}`: its message is the file's own message, verbatim. */
export class MissingVariableError extends ValidationError {
  constructor(
    readonly variable: string,
    message: string,
    readonly where: string,
  ) {
    super(
      message,
      `set ${variable} in .env beside compose.yaml (or in the environment), then run the command again`,
      variable === 'TUNNEL_TOKEN' ? 'TUNNEL_TOKEN_MISSING' : 'COMPOSE_VARIABLE_MISSING',
    );
  }
}

const PATTERN = /\$(?:(\$)|([_a-z][_a-z0-9]*)|\{([_a-z][_a-z0-9]*)(?:(:?[-?])([^}]*))?\}|())/gi;

/** Interpolates one string; `where` names the place in messages ("service cloudflared: environment"). */
export function interpolateString(text: string, ctx: InterpolationContext, where: string): string {
  return text.replace(PATTERN, (whole, escaped: string | undefined, named: string | undefined, braced: string | undefined, sep: string | undefined, arg: string | undefined, invalid: string | undefined, offset: number) => {
    if (escaped !== undefined) return '$';
    if (invalid !== undefined) {
      throw new ValidationError(
        `invalid interpolation format in ${where}: "${text}" (at "${text.slice(offset, offset + 12)}")`,
        'write $$ for a literal $, and ${NAME} or ${NAME:-default} for a variable',
        'COMPOSE_INTERPOLATION_INVALID',
      );
    }
    const name = (named ?? braced)!;
    const value = ctx.env[name];
    if (sep === ':-') return value ? value : (arg ?? '');
    if (sep === '-') return value !== undefined ? value : (arg ?? '');
    if (sep === ':?' || sep === '?') {
      const missing = sep === ':?' ? !value : value === undefined;
      if (missing) throw new MissingVariableError(name, arg || `${name} is not set (${where})`, where);
      return value!;
    }
    if (value === undefined) {
      ctx.unset.add(name);
      return '';
    }
    return value;
  });
}

/** Interpolates every string in a parsed YAML value (keys are left alone, as compose does). */
export function interpolateValue(value: unknown, ctx: InterpolationContext, where: string): unknown {
  if (typeof value === 'string') return interpolateString(value, ctx, where);
  if (Array.isArray(value)) return value.map((v) => interpolateValue(v, ctx, where));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateValue(v, ctx, `${where}.${k}`);
    return out;
  }
  return value;
}
