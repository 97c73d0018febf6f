# node-gyp builds into <cwd>/build; running it from native/ keeps the addon out of the
# top-level build/ (tsc output). The target itself is defined in ../binding.gyp.
{
  'includes': ['../binding.gyp'],
}
