// Jest runs the lab extension's unit tests (labextension/src/**/__tests__/*.spec.ts) through
// ts-jest, as the JupyterLab extension template does
// (https://github.com/jupyterlab/extension-template). JupyterLab's packages are ES modules:
// they are transformed too (the template's list of ES-module packages).
const esModules = [
  '@codemirror',
  '@jupyter/ydoc',
  '@jupyterlab/',
  'lib0',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/labextension/src'],
  testRegex: 'labextension/src/.*/__tests__/.*\\.spec\\.tsx?$',
  transform: {
    '^.+\\.[jt]sx?$': [
      'ts-jest',
      {
        tsconfig: {
          module: 'commonjs',
          jsx: 'react',
          esModuleInterop: true,
          allowJs: true,
          isolatedModules: true
        }
      }
    ]
  },
  transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`],
  moduleFileExtensions: ['ts', 'tsx', 'js', 'json']
};
