/**
 * `nsd.testImages` (`--test-images`) is "at most N": asked for more test images than the sessions read hold, a run
 * reconstructs them all. Said before it runs, so that '24 test images' in the plan is no surprise to one who asked
 * for 100 (a warning of the preflight: what was asked for differs from what runs, though nothing is wrong).
 * `field`: the field as the form used names it (fieldNames' nameAndFlag): 'nsd.testImages' in a config,
 * '--test-images' where the flag gave it or there is no config file.
 */
export function testImagesShortfall(asked: number | null, available: number, subject: number, field = 'nsd.testImages'): string | null {
  if (asked === null || asked <= available) return null;
  return (
    `${field} is ${asked}, but subject ${subject} has only ${available} test image${available === 1 ? '' : 's'} ` +
    `(shared images) in the sessions read: all ${available} are reconstructed`
  );
}
