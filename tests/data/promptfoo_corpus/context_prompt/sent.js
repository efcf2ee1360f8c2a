// promptfoo renders a chat prompt as JSON.stringify(messages, null, 2): that is context.prompt.
module.exports = (output, context) => {
  const chat = [
    { role: 'system', content: 'You name things.' },
    { role: 'user', content: `Name a ${context.vars.thing}` },
  ];
  const expected = JSON.stringify(chat, null, 2);
  return { pass: context.prompt === expected, score: 1, reason: `prompt: ${context.prompt}` };
};
