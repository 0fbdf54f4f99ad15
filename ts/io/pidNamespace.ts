/** This process's PID namespace, which tells two containers of one host name apart (their pids are not each other's). */
import { readlinkSync } from 'node:fs';

/** The PID namespace of this process ('pid:[4026531836]'), '' where there is none to read (not Linux). */
export function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return '';
  }
}

/** This process's, read once. */
export const PID_NAMESPACE = pidNamespace();
