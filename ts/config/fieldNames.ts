/**
 * How a message names a config field, and says how to set it, in the words of the form its user gave the settings
 * in. A config (the library's, a batch manifest's, the service's job body) names its fields (img2img.rule); a command
 * line that sets some fields by flags names those by their flags (reconstruct's --rule), and one without a config
 * file (reconstruct's flags-only form) cannot set the others at all but with --config.
 */

/**
 * A command line that gave a config's fields: which flag sets which field, the fields its flags set, and the config
 * file the others come from.
 */
export interface FieldFlags {
  /** The flag that sets each field that has one, by the field's dotted name: { 'img2img.rule': '--rule' }. */
  flags: Readonly<Record<string, string>>;
  /** The fields a flag set on this command line. */
  given: readonly string[];
  /** The config file (--config) the other fields come from; undefined: none (every field is a flag's or a default). */
  config?: string;
}

/** A value to set a field to: a number, a string (a config quotes it), or words for one ('the sessions you mean to read'). */
export type FieldValue = number | string | { words: string };

/** A field's names for the form used (fieldNames). */
export interface FieldNames {
  /** The field as its user gave it: 'img2img.steps' in a config, '--steps' where the flag gave it or there is no config. */
  name(field: string): string;
  /** The field with a value, as its user writes it: "img2img.rule 'compvis'" (a config), '--rule compvis' (a flag). */
  valued(field: string, value: number | string): string;
  /**
   * How to set the field to `value`: "set img2img.rule to 'diffusers'" (a config); "use --rule diffusers" (its flag
   * gave it, or there is no config); "set img2img.rule to 'diffusers' in recon.json, or use --rule diffusers" (a
   * config file and a flag); "use --config with nsd.sessions set to …" (no config file, no flag).
   */
  setTo(field: string, value: FieldValue): string;
  /**
   * The field as name() names it, and, where its value came from a config file and the command line has a flag for
   * it too, both: 'nsd.testImages in recon.json (or --test-images)'. For a message that names a field without saying
   * how to set it (a warning of what was asked for), in words that fit either form the user may change it in.
   */
  nameAndFlag(field: string): string;
  /**
   * Whether the form has no way to give the field: a command line without a config file and no flag for it, so its
   * value is the default. A problem of it leads with what is wrong in plain words, not with a field its user never
   * wrote, then says how to set it (setTo: "use --config with decoders.z.folds set to 2").
   */
  fromDefault(field: string): boolean;
}

const inConfig = (v: FieldValue): string => (typeof v === 'object' ? v.words : typeof v === 'string' ? `'${v}'` : String(v));
const onFlag = (v: FieldValue): string => (typeof v === 'object' ? v.words : String(v));

/** The names of `form`'s fields; without one, a config's (each field by its own name). */
export function fieldNames(form?: FieldFlags): FieldNames {
  const flagOf = (field: string): string | undefined => (form && Object.hasOwn(form.flags, field) ? form.flags[field] : undefined);
  // the flag names the field where its value came from the flag, or from no file (a flag's default)
  const byFlag = (field: string): string | undefined => {
    const flag = flagOf(field);
    return flag !== undefined && (form!.config === undefined || form!.given.includes(field)) ? flag : undefined;
  };
  return {
    name: (field) => byFlag(field) ?? field,
    valued: (field, value) => {
      const flag = byFlag(field);
      return flag !== undefined ? `${flag} ${onFlag(value)}` : `${field} ${inConfig(value)}`;
    },
    setTo: (field, value) => {
      const flag = flagOf(field);
      const byFile = `set ${field} to ${inConfig(value)}`;
      if (!form) return byFile;
      if (byFlag(field) !== undefined) return `use ${flag} ${onFlag(value)}`;
      if (form.config === undefined) return `use --config with ${field} set to ${inConfig(value)}`;
      return flag !== undefined ? `${byFile} in ${form.config}, or use ${flag} ${onFlag(value)}` : `${byFile} in ${form.config}`;
    },
    nameAndFlag: (field) => {
      const flag = flagOf(field);
      if (byFlag(field) !== undefined || flag === undefined || form?.config === undefined) return byFlag(field) ?? field;
      return `${field} in ${form.config} (or ${flag})`;
    },
    fromDefault: (field) => form !== undefined && form.config === undefined && flagOf(field) === undefined,
  };
}
